{{- define "ww.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "ww.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: api
{{- end -}}

{{- define "ww.labels" -}}
{{ include "ww.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/* The Neo4j the API uses: the bundled chart's (a Service named after the release), or
yours; empty on the embedded tier. */}}
{{- define "ww.neo4jUri" -}}
{{- if .Values.neo4j.enabled -}}
{{- printf "bolt://%s:7687" .Release.Name -}}
{{- else -}}
{{- .Values.externalNeo4j.uri -}}
{{- end -}}
{{- end -}}

{{- define "ww.qdrantUrl" -}}
{{- if .Values.qdrant.enabled -}}
{{- printf "http://%s-qdrant:6333" .Release.Name -}}
{{- else -}}
{{- .Values.externalQdrant.url -}}
{{- end -}}
{{- end -}}

{{- define "ww.secretName" -}}
{{- .Values.secrets.existingSecret | default (printf "%s-secrets" (include "ww.fullname" .)) -}}
{{- end -}}

{{/* Fail on combinations that cannot work, before anything is applied. */}}
{{- define "ww.validate" -}}
{{- $server := ne (include "ww.neo4jUri" .) "" -}}
{{- if not $server -}}
{{- if or (gt (int .Values.replicaCount) 1) .Values.autoscaling.enabled (gt (int .Values.apiWorkers) 1) -}}
{{- fail "the embedded tier (no neo4j.enabled, no externalNeo4j.uri) is single-process: set replicaCount=1, apiWorkers=1 and autoscaling.enabled=false, or configure a Neo4j" -}}
{{- end -}}
{{- end -}}
{{- if and .Values.neo4j.enabled (not .Values.secrets.neo4jPassword) (not .Values.secrets.existingSecret) -}}
{{- fail "neo4j.enabled needs secrets.neo4jPassword (e.g. --set secrets.neo4jPassword=\"$(openssl rand -base64 16)\")" -}}
{{- end -}}
{{- end -}}
