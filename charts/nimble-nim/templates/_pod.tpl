{{/* The NIM pod template, shared by the Deployment and the StatefulSet. */}}
{{- define "nimble-nim.podTemplate" -}}
{{- $fullname := include "nimble-nim.fullname" . -}}
{{- $os := .Values.cache.objectStorage -}}
{{- $major := include "nimble-nim.nimMajor" . -}}
{{- $healthPort := 0 -}}
{{- if and (eq $major "2") (gt (int .Values.nim.healthPort) 0) -}}
{{- $healthPort = int .Values.nim.healthPort -}}
{{- end -}}
{{- $probePort := gt $healthPort 0 | ternary "health" "http" -}}
metadata:
  labels:
    {{- include "nimble-nim.labels" . | nindent 4 }}
    {{- with .Values.podLabels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  annotations:
    nimble-oke/startup-budget-seconds: {{ .Values.probes.startup.budgetSeconds | quote }}
    nimble-oke/startup-budget-computed-by: {{ .Values.probes.startup.computedBy | quote }}
    nimble-oke/cache-mode: {{ .Values.cache.mode | quote }}
    {{- with .Values.podAnnotations }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
spec:
  serviceAccountName: {{ include "nimble-nim.serviceAccountName" . }}
  automountServiceAccountToken: false
  enableServiceLinks: false
  terminationGracePeriodSeconds: {{ .Values.scheduling.terminationGracePeriodSeconds }}
  {{- with .Values.scheduling.priorityClassName }}
  priorityClassName: {{ . }}
  {{- end }}
  {{- with .Values.imagePullSecrets }}
  imagePullSecrets:
    {{- range . }}
    - name: {{ . }}
    {{- end }}
  {{- end }}
  securityContext:
    runAsNonRoot: true
    runAsUser: {{ .Values.security.runAsUser }}
    runAsGroup: {{ .Values.security.runAsGroup }}
    fsGroup: {{ .Values.security.fsGroup }}
    fsGroupChangePolicy: OnRootMismatch
    seccompProfile:
      {{- include "nimble-nim.seccompProfile" . | nindent 6 }}
  nodeSelector:
    {{- include "nimble-nim.gpuNodeSelector" . | nindent 4 }}
  tolerations:
    {{- include "nimble-nim.gpuTolerations" . | nindent 4 }}
  {{- if .Values.scheduling.podAntiAffinity.enabled }}
  affinity:
    podAntiAffinity:
      {{- if eq .Values.scheduling.podAntiAffinity.type "required" }}
      requiredDuringSchedulingIgnoredDuringExecution:
        - topologyKey: kubernetes.io/hostname
          labelSelector:
            matchLabels:
              {{- include "nimble-nim.selectorLabels" . | nindent 14 }}
      {{- else }}
      preferredDuringSchedulingIgnoredDuringExecution:
        - weight: 100
          podAffinityTerm:
            topologyKey: kubernetes.io/hostname
            labelSelector:
              matchLabels:
                {{- include "nimble-nim.selectorLabels" . | nindent 16 }}
      {{- end }}
  {{- end }}
  {{- if .Values.scheduling.topologySpread.enabled }}
  topologySpreadConstraints:
    {{- range .Values.scheduling.topologySpread.topologyKeys }}
    - maxSkew: {{ $.Values.scheduling.topologySpread.maxSkew }}
      topologyKey: {{ . }}
      whenUnsatisfiable: {{ $.Values.scheduling.topologySpread.whenUnsatisfiable }}
      labelSelector:
        matchLabels:
          {{- include "nimble-nim.selectorLabels" $ | nindent 10 }}
    {{- end }}
  {{- end }}
  {{- if ne .Values.cache.mode "pvc" }}
  initContainers:
    {{- if eq .Values.cache.mode "object-storage" }}
    # Fills the cache from Object Storage with parallel ranged GETs and verifies every
    # object's checksum; exits at once when the cache manifest already matches the source.
    - name: hydrate-cache
      image: "{{ .Values.cache.toolsImage.repository }}:{{ .Values.cache.toolsImage.tag }}"
      imagePullPolicy: {{ .Values.cache.toolsImage.pullPolicy }}
      command:
        - nimble
        - models
        - hydrate
        - --source
        - {{ printf "oci://%s@%s/%s" $os.bucket $os.namespace $os.prefix | quote }}
        {{- with $os.version }}
        - --version
        - {{ . | quote }}
        {{- end }}
        - --dest
        - {{ .Values.nim.cachePath | quote }}
        - --auth
        - {{ $os.auth }}
        {{- with $os.region }}
        - --region
        - {{ . | quote }}
        {{- end }}
        - --parallelism
        - {{ $os.parallelism | quote }}
        - --part-size-mib
        - {{ $os.partSizeMiB | quote }}
        - --skip-if-manifest-matches
      env:
        {{- if eq $os.auth "par" }}
        - name: NIMBLE_PAR_URL
          valueFrom:
            secretKeyRef:
              name: {{ $os.parSecret.name }}
              key: {{ $os.parSecret.key }}
        {{- else }}
        - name: OCI_RESOURCE_PRINCIPAL_VERSION
          value: "2.2"
        {{- with $os.region }}
        - name: OCI_RESOURCE_PRINCIPAL_REGION
          value: {{ . | quote }}
        {{- end }}
        {{- end }}
      resources:
        {{- toYaml .Values.cache.initResources | nindent 8 }}
      securityContext:
        {{- include "nimble-nim.containerSecurityContext" . | nindent 8 }}
      volumeMounts:
        - name: model-cache
          mountPath: {{ .Values.nim.cachePath }}
        {{- if eq $os.auth "workload-identity" }}
        - name: workload-identity-token
          mountPath: /var/run/secrets/kubernetes.io/serviceaccount
          readOnly: true
        {{- end }}
    {{- else if eq .Values.cache.mode "ngc" }}
    # NIM's own downloader fills the cache from NGC before the server starts (the
    # NIMCache pattern); files already in the cache are not downloaded again.
    - name: download-to-cache
      image: "{{ .Values.image.repository }}:{{ .Values.image.tag }}"
      imagePullPolicy: {{ .Values.image.pullPolicy }}
      command:
        - download-to-cache
        {{- with .Values.nim.modelProfile }}
        - -p
        - {{ . | quote }}
        {{- end }}
      env:
        - name: NGC_API_KEY
          valueFrom:
            secretKeyRef:
              name: {{ .Values.ngc.apiKeySecret.name }}
              key: {{ .Values.ngc.apiKeySecret.key }}
        - name: NIM_CACHE_PATH
          value: {{ .Values.nim.cachePath | quote }}
      resources:
        {{- toYaml .Values.cache.initResources | nindent 8 }}
      securityContext:
        {{- include "nimble-nim.containerSecurityContext" . | nindent 8 }}
      volumeMounts:
        - name: model-cache
          mountPath: {{ .Values.nim.cachePath }}
    {{- end }}
  {{- end }}
  containers:
    - name: nim
      image: "{{ .Values.image.repository }}:{{ .Values.image.tag }}"
      imagePullPolicy: {{ .Values.image.pullPolicy }}
      ports:
        - name: http
          containerPort: {{ .Values.nim.port }}
          protocol: TCP
        {{- if $healthPort }}
        - name: health
          containerPort: {{ $healthPort }}
          protocol: TCP
        {{- end }}
      env:
        - name: NGC_API_KEY
          valueFrom:
            secretKeyRef:
              name: {{ .Values.ngc.apiKeySecret.name }}
              key: {{ .Values.ngc.apiKeySecret.key }}
        - name: NIM_CACHE_PATH
          value: {{ .Values.nim.cachePath | quote }}
        - name: NIM_SERVER_PORT
          value: {{ .Values.nim.port | quote }}
        {{- with .Values.nim.modelProfile }}
        - name: NIM_MODEL_PROFILE
          value: {{ . | quote }}
        {{- end }}
        {{- with .Values.nim.servedModelName }}
        - name: NIM_SERVED_MODEL_NAME
          value: {{ . | quote }}
        {{- end }}
        {{- if gt (int .Values.nim.maxModelLen) 0 }}
        - name: NIM_MAX_MODEL_LEN
          value: {{ .Values.nim.maxModelLen | quote }}
        {{- end }}
        {{- if eq $major "2" }}
        {{- with .Values.nim.passthroughArgs }}
        - name: NIM_PASSTHROUGH_ARGS
          value: {{ . | quote }}
        {{- end }}
        {{- if $healthPort }}
        - name: NIM_HEALTH_PORT
          value: {{ $healthPort | quote }}
        {{- end }}
        {{- end }}
        {{- if .Values.monitoring.otel.enabled }}
        - name: NIM_ENABLE_OTEL
          value: "1"
        - name: OTEL_SERVICE_NAME
          value: {{ default $fullname .Values.monitoring.otel.serviceName | quote }}
        - name: OTEL_EXPORTER_OTLP_ENDPOINT
          value: {{ .Values.monitoring.otel.endpoint | quote }}
        - name: OTEL_TRACES_EXPORTER
          value: {{ .Values.monitoring.otel.tracesExporter | quote }}
        - name: OTEL_METRICS_EXPORTER
          value: {{ .Values.monitoring.otel.metricsExporter | quote }}
        {{- end }}
        {{- with .Values.nim.extraEnv }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      resources:
        requests:
          {{- with .Values.resources.requests }}
          {{- toYaml . | nindent 10 }}
          {{- end }}
          {{- if gt (int .Values.resources.gpu) 0 }}
          nvidia.com/gpu: {{ .Values.resources.gpu | quote }}
          {{- end }}
        limits:
          {{- with .Values.resources.limits }}
          {{- toYaml . | nindent 10 }}
          {{- end }}
          {{- if gt (int .Values.resources.gpu) 0 }}
          nvidia.com/gpu: {{ .Values.resources.gpu | quote }}
          {{- end }}
      securityContext:
        {{- include "nimble-nim.containerSecurityContext" . | nindent 8 }}
      {{- if .Values.probes.startup.enabled }}
      startupProbe:
        httpGet:
          path: /v1/health/ready
          port: {{ $probePort }}
        {{- with .Values.probes.startup }}
        initialDelaySeconds: {{ .initialDelaySeconds }}
        periodSeconds: {{ .periodSeconds }}
        timeoutSeconds: {{ .timeoutSeconds }}
        failureThreshold: {{ .failureThreshold }}
        {{- end }}
      {{- end }}
      readinessProbe:
        httpGet:
          path: /v1/health/ready
          port: {{ $probePort }}
        {{- with .Values.probes.readiness }}
        initialDelaySeconds: {{ .initialDelaySeconds }}
        periodSeconds: {{ .periodSeconds }}
        timeoutSeconds: {{ .timeoutSeconds }}
        failureThreshold: {{ .failureThreshold }}
        {{- end }}
      livenessProbe:
        httpGet:
          path: /v1/health/live
          port: {{ $probePort }}
        {{- with .Values.probes.liveness }}
        initialDelaySeconds: {{ .initialDelaySeconds }}
        periodSeconds: {{ .periodSeconds }}
        timeoutSeconds: {{ .timeoutSeconds }}
        failureThreshold: {{ .failureThreshold }}
        {{- end }}
      volumeMounts:
        - name: model-cache
          mountPath: {{ .Values.nim.cachePath }}
        {{- if .Values.shm.enabled }}
        - name: dshm
          mountPath: /dev/shm
        {{- end }}
  {{- $workloadIdentity := and (eq .Values.cache.mode "object-storage") (eq $os.auth "workload-identity") }}
  {{- if or (eq .Values.workload "Deployment") .Values.shm.enabled $workloadIdentity }}
  volumes:
    {{- if eq .Values.workload "Deployment" }}
    - name: model-cache
      persistentVolumeClaim:
        claimName: {{ include "nimble-nim.cacheClaimName" . }}
    {{- end }}
    {{- if .Values.shm.enabled }}
    - name: dshm
      emptyDir:
        medium: Memory
        sizeLimit: {{ .Values.shm.sizeLimit }}
    {{- end }}
    {{- if $workloadIdentity }}
    # Only the hydrate init container mounts the service-account token (the NIM container
    # never sees it): OKE workload identity exchanges it for an OCI resource principal.
    - name: workload-identity-token
      projected:
        sources:
          - serviceAccountToken:
              path: token
              expirationSeconds: 3600
          - configMap:
              name: kube-root-ca.crt
              items:
                - key: ca.crt
                  path: ca.crt
          - downwardAPI:
              items:
                - path: namespace
                  fieldRef:
                    fieldPath: metadata.namespace
    {{- end }}
  {{- end }}
{{- end -}}
