{{/* Names ----------------------------------------------------------------- */}}
{{- define "nimble-nim.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 40 | trimSuffix "-" -}}
{{- end -}}

{{- define "nimble-nim.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "nimble-nim.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "nimble-nim.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* Labels: every object carries app.kubernetes.io/* and nimble-oke/session --- */}}
{{- define "nimble-nim.selectorLabels" -}}
app.kubernetes.io/name: {{ include "nimble-nim.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "nimble-nim.labels" -}}
{{ include "nimble-nim.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: nimble-oke
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
nimble-oke/session: {{ .Values.session | quote }}
{{- end -}}

{{/* OCI freeform tags (JSON) for the load balancer and block volumes ----------- */}}
{{- define "nimble-nim.freeformTags" -}}
{{- $tags := dict "nimble-oke-session" .Values.session -}}
{{- $tags = merge $tags .Values.tags -}}
{{- toJson $tags -}}
{{- end -}}

{{/* Cache ---------------------------------------------------------------- */}}
{{- define "nimble-nim.cacheClaimName" -}}
{{- default (printf "%s-cache" (include "nimble-nim.fullname" .)) .Values.cache.existingClaim -}}
{{- end -}}

{{- define "nimble-nim.storageClassName" -}}
{{- if and .Values.cache.storageClass.create (eq .Values.cache.storageClass.name "oci-bv") -}}
{{- printf "%s-cache" (include "nimble-nim.fullname" .) -}}
{{- else -}}
{{- .Values.cache.storageClass.name -}}
{{- end -}}
{{- end -}}

{{- define "nimble-nim.effectiveMaxReplicas" -}}
{{- if .Values.autoscaling.enabled -}}{{ .Values.autoscaling.maxReplicas }}{{- else -}}{{ .Values.replicas }}{{- end -}}
{{- end -}}

{{/* NIM major version of the image: nim.majorVersion, or image.tag's ("1.8.0" → 1;
     anything else → 2, the current line). */}}
{{- define "nimble-nim.nimMajor" -}}
{{- if ne .Values.nim.majorVersion "auto" -}}
{{- .Values.nim.majorVersion -}}
{{- else if hasPrefix "1." (toString .Values.image.tag) -}}
1
{{- else -}}
2
{{- end -}}
{{- end -}}

{{/* Fail early on combinations that cannot work (clear messages, not a stuck pod). */}}
{{- define "nimble-nim.validate" -}}
{{- $major := include "nimble-nim.nimMajor" . -}}
{{- if eq $major "1" -}}
{{- if .Values.nim.passthroughArgs -}}
{{- fail (printf "nim.passthroughArgs: NIM_PASSTHROUGH_ARGS is a NIM 2.x setting; image tag %s is NIM 1.x (use a 2.x tag, or 1.x's own NIM_* variables in nim.extraEnv)" (toString .Values.image.tag)) -}}
{{- end -}}
{{- if gt (int .Values.nim.healthPort) 0 -}}
{{- fail (printf "nim.healthPort: NIM_HEALTH_PORT is a NIM 2.x setting; image tag %s is NIM 1.x" (toString .Values.image.tag)) -}}
{{- end -}}
{{- if regexMatch "-pp[0-9]+" .Values.nim.modelProfile -}}
{{- fail (printf "nim.modelProfile: %s is a NIM 2.x profile name (vllm-<precision>-tp<N>-pp<M>); image tag %s is NIM 1.x (names like vllm-bf16-tp1 or tensorrt_llm-a10-bf16-tp1)" .Values.nim.modelProfile (toString .Values.image.tag)) -}}
{{- end -}}
{{- else -}}
{{- if hasPrefix "tensorrt_llm" .Values.nim.modelProfile -}}
{{- fail (printf "nim.modelProfile: %s is a NIM 1.x TensorRT-LLM profile; NIM 2.x (image tag %s) runs vLLM profiles only (names like vllm-bf16-tp1-pp1)" .Values.nim.modelProfile (toString .Values.image.tag)) -}}
{{- end -}}
{{- if and (gt (int .Values.nim.healthPort) 0) (eq (int .Values.nim.healthPort) (int .Values.nim.port)) -}}
{{- fail "nim.healthPort: must differ from nim.port (0 serves health on the API port)" -}}
{{- end -}}
{{- end -}}
{{- $max := include "nimble-nim.effectiveMaxReplicas" . | int -}}
{{- if and (eq .Values.workload "Deployment") (gt $max 1) (ne .Values.cache.accessMode "ReadWriteMany") -}}
{{- fail (printf "workload: more than one replica (%d) cannot share a %s cache volume; set workload: StatefulSet (one cache volume per replica) or cache.accessMode: ReadWriteMany" $max .Values.cache.accessMode) -}}
{{- end -}}
{{- if and (eq .Values.workload "StatefulSet") .Values.cache.existingClaim -}}
{{- fail "cache.existingClaim: a StatefulSet creates one cache volume per replica; use workload: Deployment to mount an existing claim" -}}
{{- end -}}
{{- if eq .Values.cache.mode "object-storage" -}}
{{- $os := .Values.cache.objectStorage -}}
{{- if not (and $os.namespace $os.bucket) -}}
{{- fail "cache.objectStorage.bucket: cache.objectStorage.namespace and .bucket are required when cache.mode is object-storage" -}}
{{- end -}}
{{- if and (eq $os.auth "par") (not $os.parSecret.name) -}}
{{- fail "cache.objectStorage.parSecret.name: required when cache.objectStorage.auth is par (the chart takes the PAR from a Secret, never as a value)" -}}
{{- end -}}
{{- end -}}
{{- if gt (int .Values.service.loadBalancer.shapeFlexMinMbps) (int .Values.service.loadBalancer.shapeFlexMaxMbps) -}}
{{- fail "service.loadBalancer.shapeFlexMinMbps: must not exceed service.loadBalancer.shapeFlexMaxMbps" -}}
{{- end -}}
{{- if gt (int .Values.autoscaling.minReplicas) (int .Values.autoscaling.maxReplicas) -}}
{{- fail "autoscaling.minReplicas: must not exceed autoscaling.maxReplicas" -}}
{{- end -}}
{{- end -}}

{{/* Restricted-level container security context --------------------------- */}}
{{- define "nimble-nim.containerSecurityContext" -}}
allowPrivilegeEscalation: false
privileged: false
runAsNonRoot: true
readOnlyRootFilesystem: {{ .Values.security.readOnlyRootFilesystem }}
capabilities:
  drop: ["ALL"]
{{- end -}}

{{- define "nimble-nim.seccompProfile" -}}
{{- if eq .Values.security.seccomp.type "Localhost" -}}
type: Localhost
localhostProfile: {{ .Values.security.seccomp.localhostProfile }}
{{- else -}}
type: RuntimeDefault
{{- end -}}
{{- end -}}

{{/* GPU node rule (correction C2): OKE's label + toleration for OKE's taint --- */}}
{{- define "nimble-nim.gpuNodeSelector" -}}
nvidia.com/gpu: "true"
{{- with .Values.scheduling.shape }}
node.kubernetes.io/instance-type: {{ . | quote }}
{{- end }}
{{- end -}}

{{- define "nimble-nim.gpuTolerations" -}}
- key: nvidia.com/gpu
  operator: Exists
  effect: NoSchedule
{{- with .Values.scheduling.extraTolerations }}
{{ toYaml . }}
{{- end }}
{{- end -}}
