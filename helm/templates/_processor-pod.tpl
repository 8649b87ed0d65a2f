{{- /*
The processor Job's pod template, shared by the ScaledJob and the sweeper CronJob.
*/ -}}
{{- define "vote-pipeline.processorPodTemplate" -}}
{{- $p := .Values.processor -}}
template:
  metadata:
    {{- with $p.podAnnotations }}
    annotations:
      {{- toYaml . | nindent 6 }}
    {{- end }}
    labels:
      {{- include "vote-pipeline.labels" (list . "processor") | nindent 6 }}
      {{- with $p.podLabels }}
      {{- toYaml . | nindent 6 }}
      {{- end }}
  spec:
    restartPolicy: Never
    {{- with $p.priorityClassName }}
    priorityClassName: {{ . }}
    {{- end }}
    {{- with .Values.imagePullSecrets }}
    imagePullSecrets:
      {{- toYaml . | nindent 6 }}
    {{- end }}
    serviceAccountName: {{ include "vote-pipeline.serviceAccountName" . }}
    terminationGracePeriodSeconds: {{ $p.terminationGracePeriodSeconds | int64 }}
    automountServiceAccountToken: false
    {{- with .Values.podSecurityContext }}
    securityContext:
      {{- toYaml . | nindent 6 }}
    {{- end }}
    containers:
      - name: processor
        image: {{ include "vote-pipeline.image" . | quote }}
        imagePullPolicy: {{ .Values.image.pullPolicy }}
        command: ["python", "-m", "processor"]
        env:
          - name: REDIS_URL
            valueFrom:
              secretKeyRef:
                name: {{ include "vote-pipeline.componentSecret" (list . "processor") }}
                key: REDIS_URL
          - name: DATABASE_URL
            valueFrom:
              secretKeyRef:
                name: {{ include "vote-pipeline.componentSecret" (list . "processor") }}
                key: DATABASE_URL
          {{- with include "vote-pipeline.sentinelAuthEnv" (list . "processor") | trim }}{{ . | nindent 10 }}{{ end }}
          - name: VOTE_STREAM
            value: {{ .Values.config.voteStream | quote }}
          - name: VOTE_GROUP
            value: {{ .Values.config.voteGroup | quote }}
          {{- include "vote-pipeline.topologyEnv" (list . (.shard | default 0)) | nindent 10 }}
          # The processor dead-letters votes for options not in this list.
          - name: VOTE_OPTIONS
            value: {{ join "," .Values.config.voteOptions | quote }}
          - name: BATCH_SIZE
            value: {{ $p.batchSize | int64 | quote }}
          - name: CLAIM_MIN_IDLE_MS
            value: {{ $p.claimMinIdleMs | int64 | quote }}
          - name: MAX_RUNTIME_S
            value: {{ $p.maxRuntimeS | int64 | quote }}
          - name: SHUTDOWN_GRACE_S
            value: {{ $p.shutdownGraceS | int64 | quote }}
          - name: MAX_DELIVERIES
            value: {{ $p.maxDeliveries | int64 | quote }}
          - name: STALE_CONSUMER_IDLE_MS
            value: {{ $p.staleConsumerIdleMs | int64 | quote }}
          - name: LOG_FORMAT
            value: {{ .Values.config.logFormat | quote }}
          # The consumer name is the Job's name (a retried pod gets a new pod name).
          - name: JOB_NAME
            valueFrom:
              fieldRef:
                fieldPath: metadata.labels['batch.kubernetes.io/job-name']
          - name: READY_FILE
            value: {{ $p.readyFile | quote }}
          {{- with $p.extraEnv }}
          {{- toYaml . | nindent 10 }}
          {{- end }}
        {{- with $p.extraEnvFrom }}
        envFrom:
          {{- toYaml . | nindent 10 }}
        {{- end }}
        readinessProbe:
          exec:
            command: ["test", "-f", {{ $p.readyFile | quote }}]
          periodSeconds: 1
          timeoutSeconds: 1
          successThreshold: 1
          failureThreshold: 1
        {{- with $p.resources }}
        resources:
          {{- toYaml . | nindent 10 }}
        {{- end }}
        {{- with .Values.securityContext }}
        securityContext:
          {{- toYaml . | nindent 10 }}
        {{- end }}
        volumeMounts:
          - name: run
            mountPath: {{ dir $p.readyFile | quote }}
          - name: tmp
            mountPath: /tmp
          {{- include "vote-pipeline.tlsMount" . | nindent 10 }}
          {{- with $p.extraVolumeMounts }}
          {{- toYaml . | nindent 10 }}
          {{- end }}
    volumes:
      - name: run
        emptyDir:
          medium: Memory
          sizeLimit: 1Mi
      - name: tmp
        emptyDir:
          sizeLimit: 64Mi
      {{- include "vote-pipeline.tlsVolume" . | nindent 6 }}
      {{- with $p.extraVolumes }}
      {{- toYaml . | nindent 6 }}
      {{- end }}
    {{- with $p.nodeSelector }}
    nodeSelector:
      {{- toYaml . | nindent 6 }}
    {{- end }}
    {{- with $p.affinity }}
    affinity:
      {{- toYaml . | nindent 6 }}
    {{- end }}
    {{- with $p.tolerations }}
    tolerations:
      {{- toYaml . | nindent 6 }}
    {{- end }}
{{- end }}
