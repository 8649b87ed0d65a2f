{{- /*
Redis topology and sharded streams (docs/redis-topologies.md); the names follow
votecontract/topology.py, which tests/helm/test_topologies.py checks against this rendering.
*/ -}}

{{/*
The stream of shard i. Usage: include "vote-pipeline.shardStream" (list $ i)
One shard: config.voteStream as given (on a cluster wrapped in a hash tag unless it has one);
N shards: {<voteStream without braces>:<i>}.
*/}}
{{- define "vote-pipeline.shardStream" -}}
{{- $root := index . 0 }}{{- $shard := index . 1 }}
{{- $stream := $root.Values.config.voteStream }}
{{- if gt (int $root.Values.config.voteShards) 1 }}
{{- printf "{%s:%d}" ($stream | replace "{" "" | replace "}" "") (int $shard) }}
{{- else if and (eq $root.Values.config.redisMode "cluster") (not (regexMatch "^[^{]*\\{[^}]+\\}" $stream)) }}
{{- printf "{%s}" $stream }}
{{- else }}
{{- $stream }}
{{- end }}
{{- end }}

{{/*
The ACL key pattern of the vote stream(s): the one stream, or every shard's.
*/}}
{{- define "vote-pipeline.aclStream" -}}
{{- if gt (int .Values.config.voteShards) 1 }}
{{- printf "{%s:[0-9]*}" (.Values.config.voteStream | replace "{" "" | replace "}" "") }}
{{- else }}
{{- include "vote-pipeline.shardStream" (list . 0) }}
{{- end }}
{{- end }}

{{/*
KEDA's trigger per REDIS_MODE, for shard i. Usage: include "vote-pipeline.kedaTrigger" (list $ i)
*/}}
{{- define "vote-pipeline.kedaTrigger" -}}
{{- $root := index . 0 }}{{- $shard := index . 1 }}
{{- $mode := $root.Values.config.redisMode }}
{{- $p := $root.Values.processor }}
{{- if eq $mode "cluster" }}
- type: redis-cluster-streams
  name: vote-lag
  metadata:
    addresses: {{ $root.Values.externalRedis.clusterAddresses | default (include "vote-pipeline.kedaRedisAddress" $root) | quote }}
{{- else if eq $mode "sentinel" }}
- type: redis-sentinel-streams
  name: vote-lag
  metadata:
    addresses: {{ $root.Values.externalRedis.sentinels | quote }}
    sentinelMaster: {{ $root.Values.externalRedis.sentinelMaster | quote }}
    databaseIndex: {{ include "vote-pipeline.kedaRedisDatabase" $root | quote }}
{{- else }}
- type: redis-streams
  name: vote-lag
  metadata:
    address: {{ include "vote-pipeline.kedaRedisAddress" $root | quote }}
    databaseIndex: {{ include "vote-pipeline.kedaRedisDatabase" $root | quote }}
{{- end }}
    {{- if eq (include "vote-pipeline.kedaRedisTls" $root) "true" }}
    enableTLS: "true"
    {{- end }}
    stream: {{ include "vote-pipeline.shardStream" (list $root $shard) | quote }}
    consumerGroup: {{ $root.Values.config.voteGroup | quote }}
    # Lag mode (XINFO GROUPS lag, Redis >= 7): the only mode that scales to zero.
    lagCount: {{ $p.lagCount | int64 | quote }}
    activationLagCount: {{ $p.activationLagCount | int64 | quote }}
  authenticationRef:
    name: {{ include "vote-pipeline.componentName" (list $root "processor-redis") }}
{{- end }}

{{/*
The topology variables of a processor Job of shard i (none in the default layout, which
keeps the default rendering equal to keda/scaledjob.yaml).
*/}}
{{- define "vote-pipeline.topologyEnv" -}}
{{- $root := index . 0 }}{{- $shard := index . 1 }}
{{- $c := $root.Values.config }}
{{- if or (ne $c.redisMode "standalone") (gt (int $c.voteShards) 1) }}
- name: REDIS_MODE
  value: {{ $c.redisMode | quote }}
- name: VOTE_SHARDS
  value: {{ $c.voteShards | int64 | quote }}
- name: VOTE_SHARD
  value: {{ $shard | int64 | quote }}
{{- if eq $c.redisMode "sentinel" }}
- name: REDIS_SENTINELS
  value: {{ $root.Values.externalRedis.sentinels | quote }}
- name: REDIS_SENTINEL_MASTER
  value: {{ $root.Values.externalRedis.sentinelMaster | quote }}
{{- end }}
{{- end }}
{{- end }}

{{/*
Fail early on topology settings that cannot work.
*/}}
{{- define "vote-pipeline.validateTopology" -}}
{{- $c := .Values.config }}
{{- if and (ne $c.redisMode "standalone") .Values.redis.enabled }}
{{- fail (printf "config.redisMode=%s needs an external Redis: set redis.enabled=false (the bundled Redis is standalone)" $c.redisMode) }}
{{- end }}
{{- if and (eq $c.redisMode "sentinel") (or (not .Values.externalRedis.sentinels) (not .Values.externalRedis.sentinelMaster)) }}
{{- fail "config.redisMode=sentinel needs externalRedis.sentinels and externalRedis.sentinelMaster" }}
{{- end }}
{{- end }}

{{/*
The sentinel credentials the chart passes on, as JSON {variable: KEDA parameter}: with
redisMode=sentinel, those given in externalRedis, or with existingSecret both (a key missing
from that Secret reads as none, for KEDA as for the pods' optional references).
*/}}
{{- define "vote-pipeline.sentinelAuthKeys" -}}
{{- $keys := dict }}
{{- $e := .Values.externalRedis }}
{{- if eq .Values.config.redisMode "sentinel" }}
{{- if or .Values.existingSecret $e.sentinelUsername }}
{{- $_ := set $keys "REDIS_SENTINEL_USERNAME" "sentinelUsername" }}
{{- end }}
{{- if or .Values.existingSecret $e.sentinelPassword }}
{{- $_ := set $keys "REDIS_SENTINEL_PASSWORD" "sentinelPassword" }}
{{- end }}
{{- end }}
{{- $keys | toJson }}
{{- end }}

{{/*
The sentinel credentials as Secret data (only when the chart writes the Secrets).
*/}}
{{- define "vote-pipeline.sentinelSecretData" -}}
{{- $e := .Values.externalRedis }}
{{- $values := dict "REDIS_SENTINEL_USERNAME" $e.sentinelUsername "REDIS_SENTINEL_PASSWORD" $e.sentinelPassword }}
{{- range $key, $_ := include "vote-pipeline.sentinelAuthKeys" . | fromJson }}
{{ $key }}: {{ get $values $key | quote }}
{{- end }}
{{- end }}

{{/*
The pods' sentinel credentials, from the component's Secret.
Usage: include "vote-pipeline.sentinelAuthEnv" (list $ "ingest")
*/}}
{{- define "vote-pipeline.sentinelAuthEnv" -}}
{{- $root := index . 0 }}
{{- range $key, $_ := include "vote-pipeline.sentinelAuthKeys" $root | fromJson }}
- name: {{ $key }}
  valueFrom:
    secretKeyRef:
      name: {{ include "vote-pipeline.componentSecret" (list $root (index $ 1)) }}
      key: {{ $key }}
      {{- if $root.Values.existingSecret }}
      optional: true
      {{- end }}
{{- end }}
{{- end }}
