{{/* A Helm test pod running one curl script against the API Service.
     Args: dict "root" $ "name" <suffix> "script" <sh script>. */}}
{{- define "nimble-nim.testPod" -}}
{{- $root := .root -}}
apiVersion: v1
kind: Pod
metadata:
  name: {{ include "nimble-nim.fullname" $root }}-test-{{ .name }}
  namespace: {{ $root.Release.Namespace }}
  labels:
    {{- include "nimble-nim.labels" $root | nindent 4 }}
    app.kubernetes.io/component: test
    nimble-oke/api-client: "true"
  annotations:
    helm.sh/hook: test
    helm.sh/hook-delete-policy: before-hook-creation,hook-succeeded
spec:
  restartPolicy: Never
  automountServiceAccountToken: false
  enableServiceLinks: false
  # OKE taints GPU nodes nvidia.com/gpu=present:NoSchedule; on a cluster whose only nodes
  # are GPU nodes (nimble's default) a test pod without the toleration stays Pending and
  # `helm test` times out. It tolerates what the NIM pod tolerates, but asks for no GPU
  # and no GPU node (it runs on a CPU node when there is one).
  tolerations:
    {{- include "nimble-nim.gpuTolerations" $root | nindent 4 }}
  securityContext:
    runAsNonRoot: true
    runAsUser: 100
    runAsGroup: 101
    seccompProfile:
      type: RuntimeDefault
  containers:
    - name: {{ .name }}
      image: "{{ $root.Values.tests.image.repository }}:{{ $root.Values.tests.image.tag }}"
      env:
        - name: NIM_URL
          value: {{ printf "http://%s.%s.svc:%v" (include "nimble-nim.fullname" $root) $root.Release.Namespace $root.Values.service.port | quote }}
        - name: MAX_TOKENS
          value: {{ $root.Values.tests.maxTokens | quote }}
      command: ["sh", "-ec"]
      args:
        - |
          {{- .script | nindent 10 }}
      securityContext:
        allowPrivilegeEscalation: false
        readOnlyRootFilesystem: true
        capabilities:
          drop: ["ALL"]
      resources:
        requests:
          cpu: 10m
          memory: 16Mi
        limits:
          cpu: 200m
          memory: 64Mi
{{- end -}}
