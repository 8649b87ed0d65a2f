{{/*
PromQL label matchers of this release's ingest series: monitoring.prometheusRule.ingestSelector,
else the namespace and the `job` label a ServiceMonitor gives the ingest Service's targets (the
Service's name).
*/}}
{{- define "vote-pipeline.ingestSelector" -}}
{{- .Values.monitoring.prometheusRule.ingestSelector | default (printf "namespace=%q,job=%q" .Release.Namespace (include "vote-pipeline.fullname" .)) }}
{{- end }}

{{/*
One alerting rule. Usage: include "vote-pipeline.alertRule" (dict "ctx" . "name" "VotePipelineX"
"config" .Values.monitoring.prometheusRule.x "expr" "..." "summary" "..." "description" "...")
The runbook_url is the runbook page's anchor of the alert (its heading in docs/runbook.md).
*/}}
{{- define "vote-pipeline.alertRule" -}}
{{- $rule := .ctx.Values.monitoring.prometheusRule -}}
- alert: {{ .name }}
  expr: |-
    {{- .expr | trim | nindent 4 }}
  {{- if .config.for }}
  for: {{ .config.for }}
  {{- end }}
  labels:
    severity: {{ .config.severity | quote }}
    {{- with $rule.alertLabels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  annotations:
    summary: {{ .summary | quote }}
    description: {{ .description | quote }}
    runbook_url: {{ printf "%s#%s" $rule.runbookUrl (lower .name) | quote }}
{{- end }}
