{{/* Names, labels and the checks every template relies on. */}}

{{- define "palaver.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "palaver.fullname" -}}
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

{{- define "palaver.selectorLabels" -}}
app.kubernetes.io/name: {{ include "palaver.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "palaver.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "palaver.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "palaver.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/*
The longest Palaver takes to stop after SIGTERM, in seconds: the waits in
Application::run (crates/server/src/app.rs) one after another: sessions
(SESSION_GRACE 10 s), presence and the message writer (FLUSH_GRACE 10 s each),
Kafka's acknowledgements (BUS_FLUSH_GRACE 5 s). tests/helm/test_chart.py reads
them from app.rs and fails when this number falls behind.
*/}}
{{- define "palaver.drainSeconds" -}}35{{- end }}

{{/* The chart creates a Secret when it has secret values to keep. */}}
{{- define "palaver.ownSecret" -}}
{{- if or .Values.secretEnv .Values.attachments.secretEnv (and (eq .Values.mode "cluster") .Values.cluster.database.url) }}true{{ end }}
{{- end }}

{{/* Refusals the schema cannot express. */}}
{{- define "palaver.validate" -}}
{{- $drain := include "palaver.drainSeconds" . | int }}
{{- $grace := .Values.terminationGracePeriodSeconds | int }}
{{- $sleep := .Values.preStopSleepSeconds | int }}
{{- if le $grace (add $sleep $drain) }}
{{- fail (printf "terminationGracePeriodSeconds (%d) must exceed preStopSleepSeconds (%d) plus Palaver's drain (%d s), or the kubelet kills Palaver mid-drain" $grace $sleep $drain) }}
{{- end }}
{{- if eq .Values.mode "cluster" }}
{{- if not (or .Values.cluster.database.url .Values.cluster.database.existingSecret) }}
{{- fail "cluster mode needs PostgreSQL: set cluster.database.url, or cluster.database.existingSecret (and existingSecretKey)" }}
{{- end }}
{{- if not (or .Values.cluster.kafka.brokers .Values.cluster.kafka.existingSecret) }}
{{- fail "cluster mode needs Kafka between its pods: set cluster.kafka.brokers, or cluster.kafka.existingSecret (and existingSecretKey)" }}
{{- end }}
{{- if not .Values.attachments.url }}
{{- fail "cluster mode needs attachments in storage every pod reaches (each pod's data directory is its own): set attachments.url to s3://bucket/prefix" }}
{{- end }}
{{- $hpa := .Values.cluster.autoscaling }}
{{- if and $hpa.enabled (gt ($hpa.minReplicas | int) ($hpa.maxReplicas | int)) }}
{{- fail (printf "cluster.autoscaling.minReplicas (%d) exceeds maxReplicas (%d)" ($hpa.minReplicas | int) ($hpa.maxReplicas | int)) }}
{{- end }}
{{- end }}
{{- end }}

{{/* The pod, the same in both modes but for its data volume. */}}
{{- define "palaver.podTemplate" -}}
metadata:
  labels:
    {{- include "palaver.selectorLabels" . | nindent 4 }}
  annotations:
    # A changed setting rolls the pods.
    checksum/config: {{ include (print $.Template.BasePath "/configmap.yaml") . | sha256sum }}
    checksum/secret: {{ include (print $.Template.BasePath "/secret.yaml") . | sha256sum }}
    {{- with .Values.podAnnotations }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
spec:
  {{- with .Values.imagePullSecrets }}
  imagePullSecrets:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  # Palaver talks to no Kubernetes API, and the Service links would put
  # PALAVER_SERVICE_HOST and friends into its environment, variables Palaver
  # warns about as unknown.
  automountServiceAccountToken: false
  enableServiceLinks: false
  securityContext:
    runAsNonRoot: true
    runAsUser: 10001
    runAsGroup: 10001
    fsGroup: 10001
    fsGroupChangePolicy: OnRootMismatch
    seccompProfile:
      type: RuntimeDefault
  terminationGracePeriodSeconds: {{ .Values.terminationGracePeriodSeconds }}
  containers:
    - name: palaver
      image: {{ include "palaver.image" . | quote }}
      imagePullPolicy: {{ .Values.image.pullPolicy }}
      ports:
        - name: http
          containerPort: 8080
          protocol: TCP
        {{- if .Values.metrics.enabled }}
        - name: metrics
          containerPort: 9090
          protocol: TCP
        {{- end }}
      envFrom:
        - configMapRef:
            name: {{ include "palaver.fullname" . }}
        {{- if include "palaver.ownSecret" . }}
        - secretRef:
            name: {{ include "palaver.fullname" . }}
        {{- end }}
        {{- with .Values.existingSecret }}
        - secretRef:
            name: {{ . }}
        {{- end }}
      {{- if eq .Values.mode "cluster" }}
      {{- $db := .Values.cluster.database }}
      {{- $kafka := .Values.cluster.kafka }}
      {{- if or $db.existingSecret $kafka.existingSecret }}
      env:
        {{- with $db.existingSecret }}
        - name: PALAVER_DATABASE_URL
          valueFrom:
            secretKeyRef:
              name: {{ . }}
              key: {{ $db.existingSecretKey }}
        {{- end }}
        {{- with $kafka.existingSecret }}
        - name: PALAVER_KAFKA_BROKERS
          valueFrom:
            secretKeyRef:
              name: {{ . }}
              key: {{ $kafka.existingSecretKey }}
        {{- end }}
      {{- end }}
      {{- end }}
      {{- if gt (.Values.preStopSleepSeconds | int) 0 }}
      lifecycle:
        # Endpoints and proxies drop a terminating pod a moment after it is
        # told to stop: keep serving until they have.
        preStop:
          exec:
            command: ["sleep", "{{ .Values.preStopSleepSeconds }}"]
      {{- end }}
      startupProbe:
        httpGet:
          path: /healthz
          port: http
          {{- if .Values.tls.secretName }}
          scheme: HTTPS
          {{- end }}
        periodSeconds: 2
        failureThreshold: 60
      livenessProbe:
        httpGet:
          path: /healthz
          port: http
          {{- if .Values.tls.secretName }}
          scheme: HTTPS
          {{- end }}
        periodSeconds: 10
        failureThreshold: 3
      readinessProbe:
        httpGet:
          path: /readyz
          port: http
          {{- if .Values.tls.secretName }}
          scheme: HTTPS
          {{- end }}
        periodSeconds: 5
        failureThreshold: 2
      resources:
        {{- toYaml .Values.resources | nindent 8 }}
      securityContext:
        allowPrivilegeEscalation: false
        readOnlyRootFilesystem: true
        capabilities:
          drop: ["ALL"]
      volumeMounts:
        - name: data
          mountPath: /var/lib/palaver
        - name: tmp
          mountPath: /tmp
        {{- if .Values.configFile }}
        - name: config
          mountPath: /etc/palaver
          readOnly: true
        {{- end }}
        {{- if .Values.tls.secretName }}
        # The Secret's files change in place when it is renewed (a symlink
        # swap Palaver follows); a subPath mount would never change.
        - name: tls
          mountPath: /etc/palaver-tls
          readOnly: true
        {{- end }}
  volumes:
    {{- if eq .Values.mode "cluster" }}
    # Nothing durable here in cluster mode (PostgreSQL holds the data): mail
    # files when no SMTP server is set.
    - name: data
      emptyDir: {}
    {{- end }}
    - name: tmp
      emptyDir: {}
    {{- if .Values.configFile }}
    - name: config
      configMap:
        name: {{ include "palaver.fullname" . }}
        items:
          - key: palaver.toml
            path: palaver.toml
    {{- end }}
    {{- with .Values.tls.secretName }}
    - name: tls
      secret:
        secretName: {{ . }}
        defaultMode: 0440
    {{- end }}
  {{- with .Values.nodeSelector }}
  nodeSelector:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .Values.affinity }}
  affinity:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .Values.tolerations }}
  tolerations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .Values.topologySpreadConstraints }}
  topologySpreadConstraints:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end }}

{{/*
The gRPC services Palaver serves (proto/palaver/v1/*.proto, with health and
reflection beside them: crates/server/src/grpc.rs), as request paths.
*/}}
{{- define "palaver.grpcServices" -}}
- palaver.v1.Accounts
- palaver.v1.Messages
- palaver.v1.Realtime
- palaver.v1.Rooms
- grpc.health.v1.Health
- grpc.reflection.v1.ServerReflection
- grpc.reflection.v1alpha.ServerReflection
{{- end }}
