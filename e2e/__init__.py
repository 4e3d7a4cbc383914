"""End-to-end world of samizdat: the multi-cluster sandbox and the suites that run against it."""
