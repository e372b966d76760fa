{{/* Names and labels shared by every object of the chart. */}}

{{- define "livestage.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "livestage.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: livestage
{{- end -}}

{{/* Selector labels of one service: call with (dict "root" $ "name" "token"). */}}
{{- define "livestage.selector" -}}
app.kubernetes.io/name: {{ .root.Chart.Name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .name }}
{{- end -}}

{{- define "livestage.secretName" -}}
{{- .Values.secrets.existingSecret | default (printf "%s-secrets" (include "livestage.fullname" .)) -}}
{{- end -}}

{{- define "livestage.image" -}}
{{- $registry := .root.Values.image.registry -}}
{{- $tag := .root.Values.image.tag | default .root.Chart.AppVersion -}}
{{- if $registry -}}
{{- printf "%s/%s-%s:%s" $registry .root.Values.image.repository .name $tag -}}
{{- else -}}
{{- printf "%s-%s:%s" .root.Values.image.repository .name $tag -}}
{{- end -}}
{{- end -}}
