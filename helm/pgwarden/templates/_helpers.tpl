{{- define "pgwarden.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "pgwarden.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "pgwarden.labels" -}}
app.kubernetes.io/name: {{ include "pgwarden.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "pgwarden.selectorLabels" -}}
app.kubernetes.io/name: {{ include "pgwarden.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "pgwarden.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "pgwarden.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "pgwarden.secretName" -}}
{{- default (include "pgwarden.fullname" .) .Values.database.existingSecret -}}
{{- end -}}

{{- /*
LDAP directories (config.directories). Three keys of a directory are the chart's, not pgwarden's,
and never reach the ConfigMap: `bindPassword` (stored in the Secret "pgwarden.directoriesSecretName")
and `existingSecret` (your own Secret) reach the container as the environment variable pgwarden
reads the bind password from; `ca` (a ConfigMap's or Secret's key) is mounted read-only and its
path becomes the directory's tls.caFile.
*/ -}}

{{- /* The variable pgwarden reads a directory's bind password from (src/config/directories.ts):
       PGWARDEN_DIRECTORY_<NAME>_BIND_PASSWORD, NAME upper-cased, every other character `_`.
       Called with the directory's name. */ -}}
{{- define "pgwarden.directoryPasswordEnv" -}}
{{- printf "PGWARDEN_DIRECTORY_%s_BIND_PASSWORD" (regexReplaceAll "[^A-Z0-9]" (upper .) "_") -}}
{{- end -}}

{{- /* The Secret this chart creates for the directories' `bindPassword` values (one key per
       directory, named like its environment variable). */ -}}
{{- define "pgwarden.directoriesSecretName" -}}
{{- printf "%s-directories" (include "pgwarden.fullname" .) -}}
{{- end -}}

{{- /* Where a directory's CA is mounted (not under /etc/pgwarden: a mount inside the read-only
       ConfigMap volume would need a directory there). Called with the directory's name. */ -}}
{{- define "pgwarden.directoryCaDir" -}}
{{- printf "/etc/pgwarden-directories/%s" . -}}
{{- end -}}

{{- define "pgwarden.directoryCaFile" -}}
{{- printf "%s/ca.crt" (include "pgwarden.directoryCaDir" .) -}}
{{- end -}}

{{- /* values.config as pgwarden reads it: every directory without the chart's keys (bindPassword,
       existingSecret, ca) and, where `ca` is given, with tls.caFile set to the mounted file. */ -}}
{{- define "pgwarden.config" -}}
{{- $config := deepCopy .Values.config -}}
{{- if $config.directories -}}
{{- $directories := list -}}
{{- $variables := dict -}}
{{- range $config.directories -}}
{{- $variable := include "pgwarden.directoryPasswordEnv" .name -}}
{{- if hasKey $variables $variable -}}
{{- fail (printf "config.directories: %q and %q would both read their bind password from %s; rename one" (get $variables $variable) .name $variable) -}}
{{- end -}}
{{- $_ := set $variables $variable .name -}}
{{- $directory := omit . "bindPassword" "existingSecret" "ca" -}}
{{- if .ca -}}
{{- $tls := deepCopy (default (dict) .tls) -}}
{{- $_ := set $tls "caFile" (include "pgwarden.directoryCaFile" .name) -}}
{{- $_ := set $directory "tls" $tls -}}
{{- end -}}
{{- $directories = append $directories $directory -}}
{{- end -}}
{{- $_ := set $config "directories" $directories -}}
{{- end -}}
{{- toYaml $config -}}
{{- end -}}
