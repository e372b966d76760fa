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

{{/*
The Secret's keys each service reads, and nothing more (tests/support/service_secrets.py derives
the same from each service's settings classes; tests/ops/test_helm_secrets.py compares them).
NATS_URL and REDIS_URL are here because they carry credentials when auth is on.
*/}}
{{- define "livestage.secretEnv" -}}
token: [NATS_URL, REDIS_URL, LIVEKIT_API_KEY, LIVEKIT_API_SECRET, LIVESTAGE_OPERATOR_SECRET, TOKEN_VISITOR_KEY]
moderation: [NATS_URL, REDIS_URL, OPENAI_API_KEY]
chat-history: [NATS_URL, REDIS_URL, LIVEKIT_API_KEY, LIVEKIT_API_SECRET]
stage-producer: [NATS_URL, GEMINI_API_KEY, STAGE_ASSET_KEY]
host-agent: [NATS_URL, REDIS_URL, LIVEKIT_API_KEY, LIVEKIT_API_SECRET, OPENAI_API_KEY, ANAM_API_KEY, HOST_PIPELINE_API_KEY, HOST_PIPELINE_SPEECH_API_KEY]
chat-bridge: [NATS_URL, REDIS_URL, BRIDGE_YOUTUBE_API_KEY, BRIDGE_YOUTUBE_CLIENT_SECRET, BRIDGE_YOUTUBE_REFRESH_TOKEN, BRIDGE_TWITCH_CLIENT_SECRET, BRIDGE_TWITCH_ACCESS_TOKEN, BRIDGE_TWITCH_REFRESH_TOKEN]
{{- end -}}

{{/*
The platform chat secrets: chat-bridge's BRIDGE_* keys above. Their values come from
`secrets.bridge.<KEY>`, so a new platform credential is one name in chat-bridge's list.
*/}}
{{- define "livestage.bridgeSecretKeys" -}}
{{- $keys := list -}}
{{- range $key := index (include "livestage.secretEnv" . | fromYaml) "chat-bridge" -}}
{{- if hasPrefix "BRIDGE_" $key -}}
{{- $keys = append $keys $key -}}
{{- end -}}
{{- end -}}
{{- $keys | toJson -}}
{{- end -}}

{{/*
Keys a pod cannot start without (the others are optional: an existingSecret may leave out a key
it has no value for, e.g. OPENAI_API_KEY for the offline voice). STAGE_ASSET_KEY is required so
that the stage producer never falls back to deriving it from a LiveKit secret it does not get.
*/}}
{{- define "livestage.requiredSecretKeys" -}}
[NATS_URL, REDIS_URL, LIVEKIT_API_KEY, LIVEKIT_API_SECRET, STAGE_ASSET_KEY]
{{- end -}}

{{/* Every key of the Secret (the union of livestage.secretEnv). */}}
{{- define "livestage.secretKeys" -}}
{{- $keys := list -}}
{{- range $name, $list := include "livestage.secretEnv" . | fromYaml -}}
{{- $keys = concat $keys $list -}}
{{- end -}}
{{- $keys | uniq | sortAlpha | toJson -}}
{{- end -}}

{{/* The public internet: everything but the private ranges (networkPolicy.privateRanges*). */}}
{{- define "livestage.publicPeers" -}}
- ipBlock:
    cidr: 0.0.0.0/0
    except:
      {{- toYaml .Values.networkPolicy.privateRanges | nindent 6 }}
- ipBlock:
    cidr: ::/0
    except:
      {{- toYaml .Values.networkPolicy.privateRangesV6 | nindent 6 }}
{{- end -}}

{{/*
One egress rule to the backend a URL names: (dict "root" $ "url" "nats://nats.messaging:4222"
"backend" $.Values.networkPolicy.backends.nats). The URL's host picks the peers (unless the
backend's `to` is set): an IP address -> that address; one label ("nats") -> pods of this
namespace; two labels, optionally followed by .svc or .svc.<clusterDomain> ("nats.messaging") ->
pods of that namespace; any other name -> the public internet. Both pod cases narrow to the
backend's podSelector. The port is the URL's (or its scheme's default) unless `ports` is set.
*/}}
{{- define "livestage.egressRule" -}}
{{- $np := .root.Values.networkPolicy -}}
{{- $u := urlParse (trim .url) -}}
{{- $host := $u.hostname -}}
{{- $port := $u.host | trimPrefix "[" | trimPrefix $host | trimPrefix "]" | trimPrefix ":" -}}
{{- $defaults := dict "nats" "4222" "tls" "4222" "redis" "6379" "rediss" "6379" "http" "80" "ws" "80" "https" "443" "wss" "443" -}}
{{- $port = $port | default (get $defaults $u.scheme) -}}
{{- if not $port -}}
{{- fail (printf "networkPolicy: no port in %s://%s and no default for that scheme: set networkPolicy.backends.<name>.ports" $u.scheme $host) -}}
{{- end -}}
{{- $short := $host | trimSuffix "." | trimSuffix (printf ".svc.%s" $np.clusterDomain) | trimSuffix ".svc" -}}
{{- $labels := splitList "." $short -}}
to:
{{- if .backend.to }}
  {{- toYaml .backend.to | nindent 2 }}
{{- else if regexMatch "^[0-9]+[.][0-9]+[.][0-9]+[.][0-9]+$" $host }}
  - ipBlock: {cidr: {{ printf "%s/32" $host }}}
{{- else if contains ":" $host }}
  - ipBlock: {cidr: {{ printf "%s/128" $host | quote }}}
{{- else if eq (len $labels) 1 }}
  - podSelector: {{ .backend.podSelector | default dict | toJson }}
{{- else if eq (len $labels) 2 }}
  - namespaceSelector:
      matchLabels:
        kubernetes.io/metadata.name: {{ index $labels 1 | quote }}
    podSelector: {{ .backend.podSelector | default dict | toJson }}
{{- else }}
  {{- include "livestage.publicPeers" .root | nindent 2 }}
{{- end }}
ports:
{{- if .backend.ports }}
  {{- toYaml .backend.ports | nindent 2 }}
{{- else }}
  - {protocol: TCP, port: {{ $port }}}
{{- end }}
{{- end -}}
