{{/*
Expand the name of the chart.
*/}}
{{- define "vote-pipeline.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Create a default fully qualified app name, truncated to 63 characters (DNS label limit).
If the release name contains the chart name it is used as the full name.
*/}}
{{- define "vote-pipeline.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/*
Name of one component's resources: <fullname>-<component>.
Usage: include "vote-pipeline.componentName" (list . "redis")
*/}}
{{- define "vote-pipeline.componentName" -}}
{{- $ctx := index . 0 -}}
{{- printf "%s-%s" (include "vote-pipeline.fullname" $ctx | trunc 50 | trimSuffix "-") (index . 1) }}
{{- end }}

{{/*
Create chart name and version as used by the chart label.
*/}}
{{- define "vote-pipeline.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Common labels of one component. Usage: include "vote-pipeline.labels" (list . "ingest")
*/}}
{{- define "vote-pipeline.labels" -}}
{{- $ctx := index . 0 -}}
helm.sh/chart: {{ include "vote-pipeline.chart" $ctx }}
{{ include "vote-pipeline.selectorLabels" . }}
{{- if $ctx.Chart.AppVersion }}
app.kubernetes.io/version: {{ $ctx.Chart.AppVersion | quote }}
{{- end }}
app.kubernetes.io/managed-by: {{ $ctx.Release.Service }}
app.kubernetes.io/part-of: vote-pipeline
{{- end }}

{{/*
Selector labels of one component; never change them (Deployment and StatefulSet selectors are
immutable). Usage: include "vote-pipeline.selectorLabels" (list . "ingest")
*/}}
{{- define "vote-pipeline.selectorLabels" -}}
{{- $ctx := index . 0 -}}
app.kubernetes.io/name: {{ include "vote-pipeline.name" $ctx }}
app.kubernetes.io/instance: {{ $ctx.Release.Name }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end }}

{{/*
Name of the service account to use.
*/}}
{{- define "vote-pipeline.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "vote-pipeline.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
The application image.
*/}}
{{- define "vote-pipeline.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}

{{/*
Name of the Secret holding REDIS_URL, DATABASE_URL and REDIS_PASSWORD.
*/}}
{{- define "vote-pipeline.secretName" -}}
{{- default (include "vote-pipeline.fullname" .) .Values.existingSecret }}
{{- end }}

{{/*
A bundled database's password: the value given, else the one already in the release's
Secret (so upgrades keep it), else a new random one. Memoised in .Values so that every template
of one rendering gets the same value. Usage: include "vote-pipeline.password" (list . "REDIS_PASSWORD" .Values.redis.password)
*/}}
{{- define "vote-pipeline.password" -}}
{{- $ctx := index . 0 -}}
{{- $key := index . 1 }}
{{- $given := index . 2 }}
{{- if $given }}
{{- $given }}
{{- else }}
{{- if not (hasKey $ctx.Values "generatedPasswords") }}
{{- $_ := set $ctx.Values "generatedPasswords" dict }}
{{- end }}
{{- $memo := get $ctx.Values "generatedPasswords" }}
{{- if not (hasKey $memo $key) }}
{{- $value := randAlphaNum 32 }}
{{- $existing := lookup "v1" "Secret" $ctx.Release.Namespace (include "vote-pipeline.fullname" $ctx) }}
{{- if and $existing $existing.data (hasKey $existing.data $key) }}
{{- $value = index $existing.data $key | b64dec }}
{{- end }}
{{- $_ := set $memo $key $value }}
{{- end }}
{{- get $memo $key }}
{{- end }}
{{- end }}

{{/*
A component's REDIS_URL (only when the chart writes the Secrets): with the bundled Redis, the
component's own ACL user (helm/files/redis-users.acl); with an external one,
externalRedis.<role>Url, else externalRedis.url. Usage: include "vote-pipeline.redisUrl" (list . "ingest")
*/}}
{{- define "vote-pipeline.redisUrl" -}}
{{- $ctx := index . 0 }}
{{- $role := index . 1 }}
{{- if $ctx.Values.redis.enabled }}
{{- $password := include "vote-pipeline.password" (list $ctx (printf "REDIS_%s_PASSWORD" (upper $role)) "") }}
{{- printf "redis://%s:%s@%s:6379/0" $role (urlquery $password) (include "vote-pipeline.componentName" (list $ctx "redis")) }}
{{- else }}
{{- $own := get $ctx.Values.externalRedis (printf "%sUrl" $role) }}
{{- $own | default (required "externalRedis.url is required when redis.enabled is false and existingSecret is empty" $ctx.Values.externalRedis.url) }}
{{- end }}
{{- end }}

{{/*
Name of the Secret a component (ingest, processor) reads REDIS_URL and DATABASE_URL from: its
own, so that each pod holds only its own credentials; existingSecret when given.
*/}}
{{- define "vote-pipeline.componentSecret" -}}
{{- $ctx := index . 0 }}
{{- default (include "vote-pipeline.componentName" (list $ctx (index . 1))) $ctx.Values.existingSecret }}
{{- end }}

{{/*
The DATABASE_URL of ingest and processor: the application role (processor/grants.sql).
*/}}
{{- define "vote-pipeline.appDatabaseUrl" -}}
{{- if .Values.postgres.enabled }}
{{- $password := include "vote-pipeline.password" (list . "POSTGRES_APP_PASSWORD" .Values.postgres.appPassword) }}
{{- printf "postgresql://%s:%s@%s:5432/%s" .Values.postgres.appUsername (urlquery $password) (include "vote-pipeline.componentName" (list . "postgres")) .Values.postgres.database }}
{{- else }}
{{- .Values.externalPostgres.appUrl | default (include "vote-pipeline.databaseUrl" .) }}
{{- end }}
{{- end }}

{{/*
DATABASE_APP_ROLE of the migration Job: the role granted the application's privileges.
*/}}
{{- define "vote-pipeline.appRole" -}}
{{- if .Values.postgres.enabled }}
{{- .Values.postgres.appUsername }}
{{- else if .Values.externalPostgres.appRole }}
{{- .Values.externalPostgres.appRole }}
{{- else if .Values.externalPostgres.appUrl }}
{{- (urlParse .Values.externalPostgres.appUrl).userinfo | default "" | splitList ":" | first }}
{{- end }}
{{- end }}

{{/*
REDIS_PASSWORD, which KEDA's TriggerAuthentication reads (only when the chart writes the Secret):
the bundled Redis's `keda` ACL user's, or the password in externalRedis.url.
*/}}
{{- define "vote-pipeline.redisPassword" -}}
{{- if .Values.redis.enabled }}
{{- include "vote-pipeline.password" (list . "REDIS_PASSWORD" "") }}
{{- else }}
{{- $userinfo := (urlParse .Values.externalRedis.url).userinfo | default "" }}
{{- if contains ":" $userinfo }}
{{- $userinfo | splitList ":" | rest | join ":" }}
{{- end }}
{{- end }}
{{- end }}

{{/*
The ACL user of an external Redis URL (redis://user:password@...), empty for the default user.
*/}}
{{- define "vote-pipeline.redisUsername" -}}
{{- if .Values.redis.enabled }}keda
{{- else if and (not .Values.existingSecret) .Values.externalRedis.url }}
{{- (urlParse .Values.externalRedis.url).userinfo | default "" | splitList ":" | first }}
{{- end }}
{{- end }}

{{/*
DATABASE_URL (only when the chart writes the Secret).
*/}}
{{- define "vote-pipeline.databaseUrl" -}}
{{- if .Values.postgres.enabled }}
{{- $password := include "vote-pipeline.password" (list . "POSTGRES_PASSWORD" .Values.postgres.password) }}
{{- printf "postgresql://%s:%s@%s:5432/%s" .Values.postgres.username (urlquery $password) (include "vote-pipeline.componentName" (list . "postgres")) .Values.postgres.database }}
{{- else }}
{{- required "externalPostgres.url is required when postgres.enabled is false and existingSecret is empty" .Values.externalPostgres.url }}
{{- end }}
{{- end }}

{{/*
host:port of Redis for KEDA's operator, which runs in its own namespace.
*/}}
{{- define "vote-pipeline.kedaRedisAddress" -}}
{{- if .Values.redis.enabled }}
{{- printf "%s.%s.svc.%s:6379" (include "vote-pipeline.componentName" (list . "redis")) .Release.Namespace .Values.clusterDomain }}
{{- else if .Values.externalRedis.address }}
{{- .Values.externalRedis.address }}
{{- else if .Values.externalRedis.url }}
{{- $host := (urlParse .Values.externalRedis.url).host }}
{{- if contains ":" $host }}{{ $host }}{{ else }}{{ $host }}:6379{{ end }}
{{- else }}
{{- fail "externalRedis.address (host:port for KEDA) is required when redis.enabled is false and externalRedis.url is empty" }}
{{- end }}
{{- end }}

{{/*
Redis database index for KEDA.
*/}}
{{- define "vote-pipeline.kedaRedisDatabase" -}}
{{- if .Values.redis.enabled }}0
{{- else if .Values.externalRedis.url }}
{{- (urlParse .Values.externalRedis.url).path | trimPrefix "/" | default "0" }}
{{- else }}
{{- .Values.externalRedis.databaseIndex | int64 }}
{{- end }}
{{- end }}

{{/*
Whether KEDA connects to Redis with TLS ("true"/"false").
*/}}
{{- define "vote-pipeline.kedaRedisTls" -}}
{{- if .Values.redis.enabled }}false
{{- else if .Values.externalRedis.url }}
{{- eq (urlParse .Values.externalRedis.url).scheme "rediss" }}
{{- else }}
{{- .Values.externalRedis.tls }}
{{- end }}
{{- end }}

{{/*
Fail early with a clear message on combinations the schema cannot express.
*/}}
{{- define "vote-pipeline.validate" -}}
{{- if and (not .Values.redis.enabled) (not .Values.externalRedis.url) (not .Values.existingSecret) }}
{{- fail "No Redis configured: set redis.enabled=true (bundled, for evaluation), or externalRedis.url, or existingSecret (with externalRedis.address)" }}
{{- end }}
{{- if and (not .Values.redis.enabled) (not .Values.externalRedis.url) (not .Values.externalRedis.address) }}
{{- fail "externalRedis.address (host:port KEDA polls) is required when existingSecret holds the Redis URL" }}
{{- end }}
{{- if and (not .Values.postgres.enabled) (not .Values.externalPostgres.url) (not .Values.existingSecret) }}
{{- fail "No PostgreSQL configured: set postgres.enabled=true (bundled, for evaluation), or externalPostgres.url, or existingSecret" }}
{{- end }}
{{- if and .Values.redis.enabled .Values.externalRedis.url }}
{{- fail "externalRedis.url is set while redis.enabled is true: set redis.enabled=false to use the external Redis" }}
{{- end }}
{{- if and .Values.postgres.enabled .Values.externalPostgres.url }}
{{- fail "externalPostgres.url is set while postgres.enabled is true: set postgres.enabled=false to use the external PostgreSQL" }}
{{- end }}
{{- $floor := add .Values.processor.maxRuntimeS .Values.processor.terminationGracePeriodSeconds }}
{{- if le (int .Values.processor.activeDeadlineSeconds) (int $floor) }}
{{- fail (printf "processor.activeDeadlineSeconds (%v) must exceed processor.maxRuntimeS + processor.terminationGracePeriodSeconds (%v), or Kubernetes kills Jobs that are still draining" .Values.processor.activeDeadlineSeconds $floor) }}
{{- end }}
{{- end }}

{{/*
The TLS Secret's volume and its mount (tls.secretName), for the pipeline's pods.
Usage: include "vote-pipeline.tlsVolume" . / include "vote-pipeline.tlsMount" .
*/}}
{{- define "vote-pipeline.tlsVolume" -}}
{{- if .Values.tls.secretName }}
- name: tls
  secret:
    secretName: {{ .Values.tls.secretName }}
    # Owner and group read only: root owns the files, the pod's fsGroup is their group.
    defaultMode: 0440
{{- end }}
{{- end }}

{{- define "vote-pipeline.tlsMount" -}}
{{- if .Values.tls.secretName }}
- name: tls
  mountPath: {{ .Values.tls.mountPath }}
  readOnly: true
{{- end }}
{{- end }}
