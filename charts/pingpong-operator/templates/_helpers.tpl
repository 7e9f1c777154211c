{{/* The name every object of the release carries: the chart's, as config/default names them. */}}
{{- define "pingpong.name" -}}pingpong-operator{{- end -}}

{{- define "pingpong.labels" -}}
app.kubernetes.io/name: pingpong-operator
app.kubernetes.io/part-of: pingpong-operator
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/instance: {{ .Release.Name }}
helm.sh/chart: {{ .Chart.Name }}-{{ .Chart.Version }}
{{- end -}}

{{- define "pingpong.selectorLabels" -}}
app.kubernetes.io/name: pingpong-operator
app.kubernetes.io/component: operator
{{- end -}}

{{- define "pingpong.image" -}}{{ .Values.image.repository }}:{{ .Values.image.tag }}{{- end -}}
