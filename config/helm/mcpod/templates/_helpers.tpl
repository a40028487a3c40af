{{/* Labels every object of the release carries. */}}
{{- define "mcpod.labels" -}}
app.kubernetes.io/name: mcpod
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* The labels mcpod's own pod is selected by (and server pods admit ingress from). */}}
{{- define "mcpod.selector" -}}
app.kubernetes.io/name: mcpod
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}
