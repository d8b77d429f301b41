{{/* Chart name, truncated to the 63 characters of a DNS label. */}}
{{- define "inference-benchmarker.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full name: the release name, plus the chart name unless the release already holds it. */}}
{{- define "inference-benchmarker.fullname" -}}
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

{{- define "inference-benchmarker.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "inference-benchmarker.selectorLabels" -}}
app.kubernetes.io/name: {{ include "inference-benchmarker.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "inference-benchmarker.labels" -}}
helm.sh/chart: {{ include "inference-benchmarker.chart" . }}
{{ include "inference-benchmarker.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "inference-benchmarker.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/* The vLLM Service's name. */}}
{{- define "inference-benchmarker.vllmName" -}}
{{- printf "%s-vllm" (include "inference-benchmarker.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The server's base URL: url, else the chart's vLLM Service, else http://vllm:8000. */}}
{{- define "inference-benchmarker.url" -}}
{{- if .Values.url }}
{{- .Values.url }}
{{- else if .Values.vllm.enabled }}
{{- printf "http://%s:%v" (include "inference-benchmarker.vllmName" .) .Values.vllm.port }}
{{- else }}
{{- "http://vllm:8000" }}
{{- end }}
{{- end }}

{{- define "inference-benchmarker.model" -}}
{{- if .Values.model }}{{ .Values.model }}{{ else if .Values.vllm.enabled }}{{ .Values.vllm.model }}{{ end }}
{{- end }}

{{- define "inference-benchmarker.tokenizer" -}}
{{- if .Values.tokenizer }}{{ .Values.tokenizer }}{{ else if .Values.vllm.enabled }}{{ .Values.vllm.model }}{{ end }}
{{- end }}

{{/* The run id every shard shares. */}}
{{- define "inference-benchmarker.runId" -}}
{{- default (printf "%s-r%d" .Release.Name (int .Release.Revision)) .Values.runId }}
{{- end }}

{{/* The results folder of this release, on the results volume. */}}
{{- define "inference-benchmarker.outputDir" -}}
{{- printf "/results/%s" .Release.Name }}
{{- end }}

{{/* "true" when the merge Job is rendered: with several shards, unless merge.enabled is false. */}}
{{- define "inference-benchmarker.mergeEnabled" -}}
{{- if and (gt (int .Values.shards) 1) (not (eq (toString .Values.merge.enabled) "false")) }}
{{- "true" }}
{{- end }}
{{- end }}

{{/* The results PersistentVolumeClaim, or nothing for an emptyDir. */}}
{{- define "inference-benchmarker.claimName" -}}
{{- if .Values.persistence.existingClaim }}
{{- .Values.persistence.existingClaim }}
{{- else if .Values.persistence.enabled }}
{{- printf "%s-results" (include "inference-benchmarker.fullname" .) }}
{{- end }}
{{- end }}

{{/* The results volume of every pod that reads or writes results. */}}
{{- define "inference-benchmarker.resultsVolume" -}}
- name: results
{{- with (include "inference-benchmarker.claimName" .) }}
  persistentVolumeClaim:
    claimName: {{ . }}
{{- else }}
  emptyDir: {}
{{- end }}
{{- end }}

{{/* Checks the values can make a working release. */}}
{{- define "inference-benchmarker.validate" -}}
{{- if lt (int .Values.shards) 1 }}
{{- fail "shards must be at least 1" }}
{{- end }}
{{- if and (gt (int .Values.shards) 1) (not (include "inference-benchmarker.claimName" .)) }}
{{- fail "shards > 1 needs a shared results volume: persistence.enabled=true or persistence.existingClaim" }}
{{- end }}
{{- end }}
