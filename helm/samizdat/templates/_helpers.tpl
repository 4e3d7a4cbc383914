{{/* Name helpers, after cert-manager's chart: every template names and labels objects through these. */}}

{{/* The chart name, or nameOverride. */}}
{{- define "samizdat.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
The full name of the release's objects: fullnameOverride, else the release name when it already
contains the chart name, else "<release>-<chart>". 63 characters, the DNS label limit.
*/}}
{{- define "samizdat.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* "<chart>-<version>" for the helm.sh/chart label. */}}
{{- define "samizdat.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* What selects the operator's pods; never changes between upgrades (selectors are immutable). */}}
{{- define "samizdat.selectorLabels" -}}
app.kubernetes.io/name: {{ include "samizdat.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end -}}

{{/* Labels on every object of the release; the operator's own objects add its selector labels. */}}
{{- define "samizdat.labels" -}}
app.kubernetes.io/name: {{ include "samizdat.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: samizdat
helm.sh/chart: {{ include "samizdat.chart" . }}
{{- end -}}

{{- define "samizdat.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "samizdat.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* The image reference: by digest when one is given, else by tag (default: the chart's appVersion). */}}
{{- define "samizdat.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{/* Replicas coordinate through kopf peering only when there is more than one and no leader election. */}}
{{- define "samizdat.peering" -}}
{{- if and (gt (int .Values.replicaCount) 1) (not .Values.election.enabled) -}}true{{- end -}}
{{- end -}}
