"""The multi-cluster sandbox: real kube-apiservers on loopback with kwok-simulated GPU nodes."""
