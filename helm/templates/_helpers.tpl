{{/*
Expand the name of the chart.
*/}}
{{- define "vote-pipeline.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The full name: <release>-<chart>, or the release name when it already contains the chart name;
at most 63 characters. Helm accepts release names with dots and leading digits, which DNS
labels (and Service names, which must start with a letter) do not: dots become dashes and a
leading digit gets the chart name in front.
*/}}
{{- define "vote-pipeline.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- $release := .Release.Name | replace "." "-" }}
{{- $full := printf "%s-%s" $release $name }}
{{- if contains $name $release }}
{{- $full = $release }}
{{- end }}
{{- if regexMatch "^[0-9]" $full }}
{{- $full = printf "%s-%s" $name $full }}
{{- end }}
{{- $full | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{/*
Name of one component's resources: <fullname>-<component>, at most `limit` characters (63, the
DNS label limit; 52 for a CronJob, whose Jobs get an 11-character suffix, and a StatefulSet,
whose controller-revision-hash label is its name plus 11 characters). A name that fits keeps
the form earlier chart versions gave it (the full name cut at 50: renaming a StatefulSet would
orphan its volume); a longer one, which Kubernetes would refuse, is cut further and ends in 5
hex digits of the full name's SHA-256, so that it still differs between long release names
that share a prefix.
Usage: include "vote-pipeline.componentName" (list . "redis" [limit])
*/}}
{{- define "vote-pipeline.componentName" -}}
{{- $ctx := index . 0 -}}
{{- $component := index . 1 -}}
{{- $limit := 63 -}}
{{- if gt (len .) 2 }}{{ $limit = index . 2 | int }}{{ end -}}
{{- $full := include "vote-pipeline.fullname" $ctx -}}
{{- $name := printf "%s-%s" ($full | trunc 50 | trimSuffix "-") $component -}}
{{- if gt (len $name) $limit -}}
{{- $room := sub (sub $limit (len $component)) 7 | int -}}
{{- $name = printf "%s-%s-%s" ($full | trunc $room | trimSuffix "-") (sha256sum $full | trunc 5) $component -}}
{{- end -}}
{{- $name -}}
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
Labels of the bundled databases' pods: no chart or app version, which would restart Redis and
PostgreSQL on every chart bump although nothing of theirs changed.
Usage: include "vote-pipeline.stableLabels" (list . "redis")
*/}}
{{- define "vote-pipeline.stableLabels" -}}
{{- $ctx := index . 0 -}}
{{ include "vote-pipeline.selectorLabels" . }}
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
{{- $password := include "vote-pipeline.password" (list $ctx (printf "REDIS_%s_PASSWORD" (upper $role)) (get $ctx.Values.redis (printf "%sPassword" $role))) }}
{{- printf "redis://%s:%s@%s:6379/0" $role (include "vote-pipeline.urlEscape" $password) (include "vote-pipeline.componentName" (list $ctx "redis" 52)) }}
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
{{- printf "postgresql://%s:%s@%s:5432/%s" .Values.postgres.appUsername (include "vote-pipeline.urlEscape" $password) (include "vote-pipeline.componentName" (list . "postgres" 52)) .Values.postgres.database }}
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
the bundled Redis's `keda` ACL user's, or the password in externalRedis.url as redis-py decodes
it. KEDA hands the Secret's value to go-redis as is, so it holds the raw password.
*/}}
{{- define "vote-pipeline.redisPassword" -}}
{{- if .Values.redis.enabled }}
{{- include "vote-pipeline.password" (list . "REDIS_PASSWORD" .Values.redis.kedaPassword) }}
{{- else }}
{{- (include "vote-pipeline.externalRedisAuth" . | fromJson).password }}
{{- end }}
{{- end }}

{{/*
The ACL user KEDA logs in as (REDIS_USERNAME): `keda` with the bundled Redis, else the user in
externalRedis.url (decoded), empty for the default user.
*/}}
{{- define "vote-pipeline.redisUsername" -}}
{{- if .Values.redis.enabled }}keda
{{- else if and (not .Values.existingSecret) .Values.externalRedis.url }}
{{- (include "vote-pipeline.externalRedisAuth" . | fromJson).username }}
{{- end }}
{{- end }}

{{/*
User and password of externalRedis.url as redis-py decodes them, as JSON. sprig's urlParse
gives the userinfo re-escaped the way Go writes it (`:` is escaped in both parts), so the first
`:` separates them and each is percent-decoded.
*/}}
{{- define "vote-pipeline.externalRedisAuth" -}}
{{- $userinfo := (urlParse .Values.externalRedis.url).userinfo | default "" }}
{{- $username := "" }}
{{- $password := "" }}
{{- if $userinfo }}
{{- $pieces := splitList ":" $userinfo }}
{{- $username = include "vote-pipeline.percentDecode" (list "externalRedis.url" (first $pieces)) }}
{{- if gt (len $pieces) 1 }}
{{- $password = include "vote-pipeline.percentDecode" (list "externalRedis.url" (rest $pieces | join ":")) }}
{{- end }}
{{- end }}
{{- include "vote-pipeline.checkCredential" (list "externalRedis.url" $username) }}
{{- include "vote-pipeline.checkCredential" (list "externalRedis.url" $password) }}
{{- dict "username" $username "password" $password | toJson }}
{{- end }}

{{/*
Percent-decoding as redis-py does it (urllib.parse.unquote), for escapes of printable ASCII;
any other escaped byte fails the rendering (the template language has no byte strings).
Usage: include "vote-pipeline.percentDecode" (list "<where, for the message>" $text)
*/}}
{{- define "vote-pipeline.percentDecode" -}}
{{- $where := index . 0 }}
{{- $parts := splitList "%" (index . 1) }}
{{- $out := first $parts }}
{{- range $part := rest $parts }}
{{- $code := substr 0 2 $part | upper }}
{{- $char := "" }}
{{- range $byte := untilStep 32 127 1 }}
{{- if eq (printf "%02X" $byte) $code }}{{ $char = printf "%c" $byte }}{{ end }}
{{- end }}
{{- if not $char }}
{{- fail (printf "%s: the escape %%%s in its user or password is not printable ASCII, which the chart cannot pass on to KEDA unchanged; put the credentials in existingSecret (REDIS_USERNAME, REDIS_PASSWORD raw) instead" $where $code) }}
{{- end }}
{{- $out = printf "%s%s%s" $out $char (substr 2 -1 $part) }}
{{- end }}
{{- $out }}
{{- end }}

{{/*
Percent-encoding of a URL's user or password that redis-py and asyncpg (urllib.parse.unquote)
decode back to the same text: urlquery writes a space as `+`, which unquote keeps as `+`.
*/}}
{{- define "vote-pipeline.urlEscape" -}}
{{- urlquery . | replace "+" "%20" }}
{{- end }}

{{/*
Fail on a user or password that cannot reach KEDA unchanged: KEDA trims surrounding
whitespace from every parameter it reads; control characters have no place in a URL either.
Usage: include "vote-pipeline.checkCredential" (list "<where>" $value)
*/}}
{{- define "vote-pipeline.checkCredential" -}}
{{- if regexMatch "(^\\s|\\s$|[[:cntrl:]])" (index . 1) }}
{{- fail (printf "%s: a password (or user) that starts or ends with whitespace or holds a control character cannot reach KEDA unchanged (KEDA trims what it reads)" (index . 0)) }}
{{- end }}
{{- end }}

{{/*
DATABASE_URL (only when the chart writes the Secret).
*/}}
{{- define "vote-pipeline.databaseUrl" -}}
{{- if .Values.postgres.enabled }}
{{- $password := include "vote-pipeline.password" (list . "POSTGRES_PASSWORD" .Values.postgres.password) }}
{{- printf "postgresql://%s:%s@%s:5432/%s" .Values.postgres.username (include "vote-pipeline.urlEscape" $password) (include "vote-pipeline.componentName" (list . "postgres" 52)) .Values.postgres.database }}
{{- else }}
{{- required "externalPostgres.url is required when postgres.enabled is false and existingSecret is empty" .Values.externalPostgres.url }}
{{- end }}
{{- end }}

{{/*
host:port of Redis for KEDA's operator, which runs in its own namespace.
*/}}
{{- define "vote-pipeline.kedaRedisAddress" -}}
{{- if .Values.redis.enabled }}
{{- printf "%s.%s.svc.%s:6379" (include "vote-pipeline.componentName" (list . "redis" 52)) .Release.Namespace .Values.clusterDomain }}
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
{{- if ge (int .Values.migration.waitForDatabaseSeconds) (int .Values.migration.activeDeadlineSeconds) }}
{{- fail (printf "migration.waitForDatabaseSeconds (%v) must be below migration.activeDeadlineSeconds (%v)" .Values.migration.waitForDatabaseSeconds .Values.migration.activeDeadlineSeconds) }}
{{- end }}
{{- if ne (empty .Values.tls.keda.certKey) (empty .Values.tls.keda.keyKey) }}
{{- fail "tls.keda.certKey and tls.keda.keyKey go together: KEDA needs both to present a client certificate" }}
{{- end }}
{{- range $key := list "sentinelUsername" "sentinelPassword" }}
{{- include "vote-pipeline.checkCredential" (list (printf "externalRedis.%s" $key) (get $.Values.externalRedis $key)) }}
{{- end }}
{{- range $key := list "password" "ingestPassword" "processorPassword" "kedaPassword" }}
{{- include "vote-pipeline.checkCredential" (list (printf "redis.%s" $key) (get $.Values.redis $key)) }}
{{- end }}
{{- if and .Values.postgres.enabled .Values.externalPostgres.url }}
{{- fail "externalPostgres.url is set while postgres.enabled is true: set postgres.enabled=false to use the external PostgreSQL" }}
{{- end }}
{{- if ge (int .Values.processor.shutdownGraceS) (int .Values.processor.terminationGracePeriodSeconds) }}
{{- fail (printf "processor.shutdownGraceS (%v) must be below processor.terminationGracePeriodSeconds (%v), or the kubelet kills Jobs before their batches are acked" .Values.processor.shutdownGraceS .Values.processor.terminationGracePeriodSeconds) }}
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
