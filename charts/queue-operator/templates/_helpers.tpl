{{/* The chart's name. */}}
{{- define "queue-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The release's base name; the objects append -controller, -apiserver, -worker. */}}
{{- define "queue-operator.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 50 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 50 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 50 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "queue-operator.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/name: {{ include "queue-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* Selector labels of one component: call with (dict "ctx" . "component" "controller"). */}}
{{- define "queue-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "queue-operator.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "queue-operator.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{- define "queue-operator.controller.serviceAccountName" -}}
{{- include "queue-operator.fullname" . }}-controller
{{- end }}

{{- define "queue-operator.apiserver.serviceAccountName" -}}
{{- include "queue-operator.fullname" . }}-apiserver
{{- end }}

{{/* The Secret the chart creates when a value is not taken from an existing Secret. */}}
{{- define "queue-operator.secretName" -}}
{{- include "queue-operator.fullname" . }}
{{- end }}

{{- define "queue-operator.database.secretName" -}}
{{- default (include "queue-operator.secretName" .) .Values.database.existingSecret }}
{{- end }}

{{- define "queue-operator.database.urlKey" -}}
{{- if .Values.database.existingSecret }}{{ .Values.database.urlKey }}{{ else }}DATABASE_URL{{ end }}
{{- end }}

{{- define "queue-operator.database.migrationURLKey" -}}
{{- if .Values.database.existingSecret }}{{ .Values.database.migrationURLKey }}{{ else }}DATABASE_MIGRATION_URL{{ end }}
{{- end }}

{{/* The JWT key has a Secret of its own: only the facade's pods use it, no worker may read it. */}}
{{- define "queue-operator.jwt.secretName" -}}
{{- default (printf "%s-jwt" (include "queue-operator.secretName" .)) .Values.apiserver.existingSecret }}
{{- end }}

{{- define "queue-operator.redis.secretName" -}}
{{- default (include "queue-operator.secretName" .) .Values.redis.existingSecret }}
{{- end }}

{{- define "queue-operator.redis.urlKey" -}}
{{- if .Values.redis.existingSecret }}{{ .Values.redis.urlKey }}{{ else }}REDIS_URL{{ end }}
{{- end }}

{{/* REDIS_URL by secretKeyRef. */}}
{{- define "queue-operator.redis.env" -}}
- name: REDIS_URL
  valueFrom:
    secretKeyRef:
      name: {{ include "queue-operator.redis.secretName" . }}
      key: {{ include "queue-operator.redis.urlKey" . }}
{{- end }}

{{- define "queue-operator.worker.serviceAccountName" -}}
{{- default (printf "%s-worker" (include "queue-operator.fullname" .)) .Values.workerServiceAccount.name }}
{{- end }}

{{/* The worker role's rules: the generated ones, with Secret reads limited to
workerServiceAccount.credentialSecretNames (none when empty). */}}
{{- define "queue-operator.worker.rules" -}}
{{- $role := .Files.Get "files/rbac/worker/role.yaml" | fromYaml }}
{{- if not $role.rules }}
{{- fail "files/rbac/worker/role.yaml has no rules: run `make manifests`" }}
{{- end }}
{{- $names := .Values.workerServiceAccount.credentialSecretNames }}
{{- $rules := list }}
{{- range $rule := $role.rules }}
{{- if has "secrets" $rule.resources }}
{{- if $names }}
{{- $rules = append $rules (merge (dict "resourceNames" $names) $rule) }}
{{- end }}
{{- else }}
{{- $rules = append $rules $rule }}
{{- end }}
{{- end }}
{{- toYaml $rules }}
{{- end }}

{{- define "queue-operator.jwt.secretKey" -}}
{{- if .Values.apiserver.existingSecret }}{{ .Values.apiserver.jwtSecretKey }}{{ else }}SUPABASE_JWT_SECRET{{ end }}
{{- end }}

{{/* DATABASE_URL, DATABASE_SCHEMA, and DATABASE_MIGRATION_URL when there may be one. */}}
{{- define "queue-operator.database.env" -}}
- name: DATABASE_SCHEMA
  value: {{ .Values.database.schema | quote }}
- name: DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ include "queue-operator.database.secretName" . }}
      key: {{ include "queue-operator.database.urlKey" . }}
{{- if or .Values.database.existingSecret .Values.database.migrationURL }}
- name: DATABASE_MIGRATION_URL
  valueFrom:
    secretKeyRef:
      name: {{ include "queue-operator.database.secretName" . }}
      key: {{ include "queue-operator.database.migrationURLKey" . }}
      optional: true
{{- end }}
{{- end }}

{{/* The ClusterRole rules of a file that `make manifests` copies from config/rbac. */}}
{{- define "queue-operator.rulesFrom" -}}
{{- $role := .ctx.Files.Get .file | fromYaml }}
{{- if not $role.rules }}
{{- fail (printf "%s has no rules: run `make manifests`" .file) }}
{{- end }}
{{- toYaml $role.rules }}
{{- end }}

{{/* GOMEMLIMIT of the facade: apiserver.goMemLimitRatio of its container's memory limit (Ki, Mi,
Gi, Ti, K, M, G, T or bytes), in bytes; empty without a limit. The Go runtime then collects
harder as the heap nears the limit instead of being OOM-killed past it. */}}
{{- define "queue-operator.goMemLimit" -}}
{{- $limit := "" }}
{{- with .Values.apiserver.resources }}{{ with .limits }}{{ $limit = toString (default "" .memory) }}{{ end }}{{ end }}
{{- if and $limit .Values.apiserver.goMemLimitRatio }}
{{- $number := regexFind "^[0-9.]+" $limit }}
{{- $unit := trimPrefix $number $limit }}
{{- $factors := dict "" 1 "Ki" 1024 "Mi" 1048576 "Gi" 1073741824 "Ti" 1099511627776 "K" 1000 "M" 1000000 "G" 1000000000 "T" 1000000000000 }}
{{- if not (hasKey $factors $unit) }}
{{- fail (printf "apiserver.resources.limits.memory %q: use a unit of Ki, Mi, Gi, Ti, K, M, G or T" $limit) }}
{{- end }}
{{- printf "%d" (int64 (floor (mulf (float64 $number) (get $factors $unit) .Values.apiserver.goMemLimitRatio))) }}
{{- end }}
{{- end }}

{{/* The facade's token and browser settings (values auth and cors). */}}
{{- define "queue-operator.auth.env" -}}
- name: JWT_ISSUER
  value: {{ required "auth.issuer is required (https://<project>.supabase.co/auth/v1)" .Values.auth.issuer | quote }}
{{- with .Values.auth.jwksURL }}
- name: SUPABASE_JWKS_URL
  value: {{ . | quote }}
{{- end }}
{{- with .Values.auth.streamTicketSecretRef }}
- name: STREAM_TICKET_SECRET
  valueFrom:
    secretKeyRef:
      name: {{ required "auth.streamTicketSecretRef.name is required" .name }}
      key: {{ required "auth.streamTicketSecretRef.key is required" .key }}
{{- end }}
{{- with .Values.cors.allowedOrigins }}
- name: CORS_ALLOWED_ORIGINS
  value: {{ join "," . | quote }}
{{- end }}
{{- end }}

{{- /* A writable /tmp (the root filesystem is read-only): the binary's envtest dependency creates
a directory under the user's cache or temp directory when it starts, and panics without one. */ -}}
{{- define "queue-operator.tmpMount" -}}
volumeMounts:
  - name: tmp
    mountPath: /tmp
{{- end }}

{{- define "queue-operator.tmpVolume" -}}
volumes:
  - name: tmp
    emptyDir:
      sizeLimit: 64Mi
{{- end }}
