variable "hcloud_token" {
  type        = string
  description = "Hetzner Cloud API token (read and write) of the project to deploy into."
  sensitive   = true
}

variable "name" {
  type        = string
  description = "Name of the server and prefix of every resource."
  default     = "wiki-events"
}

variable "server_type" {
  type        = string
  description = "Hetzner server type (current shared-vCPU line: cx23, cx33, cx43, cx53); cx23 (2 vCPU, 4 GB) holds the stack with headroom (deploy.md, 'Sizing'). Checked at plan time."
  default     = "cx23"

  validation {
    condition     = can(regex("^[a-z]+[0-9]+$", var.server_type))
    error_message = "server_type is a Hetzner type name such as cx23."
  }
}

variable "location" {
  type        = string
  description = "Hetzner location of the server, its volume and its addresses (fsn1, nbg1, hel1, ash, hil, sin). Checked at plan time."
  default     = "fsn1"
}

variable "image" {
  type        = string
  description = "Server image; cloud-init installs Docker from this distribution's own packages."
  default     = "ubuntu-24.04"
}

variable "ssh_public_keys" {
  type        = map(string)
  description = "Administrators' SSH public keys, by name; they log in as root. A key already in the Hetzner project (under any name) is used as it is, not created again."
  default     = {}

  validation {
    condition     = alltrue([for k in values(var.ssh_public_keys) : can(regex("^(\\S+)\\s+(\\S+)", trimspace(k)))])
    error_message = "ssh_public_keys holds OpenSSH public keys: \"ssh-ed25519 AAAA... comment\"."
  }
}

variable "existing_ssh_key_names" {
  type        = list(string)
  description = "Names of SSH keys already in the Hetzner project (console: Security, SSH keys) that may log in as root, beside ssh_public_keys."
  default     = []
}

variable "ssh_private_key_file" {
  type        = string
  description = "Private key terraform logs in with (as root, from a network in admin_cidrs) to send the settings; empty: the keys of the running ssh-agent."
  default     = ""
}

variable "admin_cidrs" {
  type        = list(string)
  description = "Networks allowed to reach SSH (port 22), e.g. [\"203.0.113.7/32\"]. Nothing else reaches 22."

  validation {
    condition     = length(var.admin_cidrs) > 0 && alltrue([for c in var.admin_cidrs : can(cidrnetmask(c)) || can(cidrhost(c, 0))])
    error_message = "admin_cidrs must list at least one CIDR block."
  }
}

variable "analyst_cidrs" {
  type        = list(string)
  description = "Networks allowed to reach ClickHouse over HTTPS on port 8443 (the analysts' dbt, DBeaver, notebooks, console, docs; each logs in as a ClickHouse user of its own). Default: everywhere; narrow it to the analysts' offices or VPN when they have fixed addresses."
  default     = ["0.0.0.0/0", "::/0"]

  validation {
    condition     = length(var.analyst_cidrs) > 0 && alltrue([for c in var.analyst_cidrs : can(cidrnetmask(c)) || can(cidrhost(c, 0))])
    error_message = "analyst_cidrs must list at least one CIDR block."
  }
}

variable "domain" {
  type        = string
  description = "The dashboard's domain name; point its A/AAAA records at the server's addresses (outputs)."
}

variable "acme_email" {
  type        = string
  description = "Email for Let's Encrypt (certificate expiry notices)."
}

variable "contact" {
  type        = string
  description = "Contact sent in the reader's User-Agent, as Wikimedia's policy asks (email or URL)."
}

variable "repo_url" {
  type        = string
  description = "Git URL the server clones the stack from."
}

variable "git_ref" {
  type        = string
  description = "Branch or tag of repo_url a new server clones at its first boot. A running server is upgraded by hand (deploy.md, section 3): changing this changes nothing there."
  default     = "main"
}

variable "volume_size" {
  type        = number
  description = "Size in GB of the data volume (ClickHouse, RabbitMQ, checkpoint, certificates, .env); deploy.md's sizing: 90 days of bronze at 50 events/s is about 87 GB, silver and gold add about 0.4 GB a day."
  default     = 200

  validation {
    condition     = var.volume_size >= 10
    error_message = "volume_size must be at least 10 GB."
  }
}

variable "bronze_retention_days" {
  type        = number
  description = "Days bronze keeps raw events (from ingestion)."
  default     = 90

  validation {
    condition     = var.bronze_retention_days >= 1 && var.bronze_retention_days <= 18250
    error_message = "bronze_retention_days must be from 1 to 18250 days."
  }
}

variable "silver_retention_days" {
  type        = number
  description = "Days silver keeps typed events (from ingestion); at least bronze_retention_days. Gold keeps everything."
  default     = 90

  validation {
    condition     = var.silver_retention_days >= 2 && var.silver_retention_days <= 18250
    error_message = "silver_retention_days must be from 2 to 18250 days (and at least bronze_retention_days)."
  }
}

variable "alert_webhook_url" {
  type        = string
  description = "Where the server's alerts are POSTed (an ntfy topic URL, a Slack incoming webhook...): freshness, dbt tests, backups, disk, restarts. A secret: it reaches the server over SSH, never in user-data or the state. Required: \"none\" to say you want no alerts."
  sensitive   = true
  default     = ""

  validation {
    condition     = var.alert_webhook_url == "none" || can(regex("^https://[^\\s']+$", var.alert_webhook_url))
    error_message = "alert_webhook_url is not set (or not an https:// URL): without it the server's alerts (a stuck loader, a failed backup, a full disk) stay in its logs, where nobody reads them. Set it to an ntfy topic or a Slack incoming webhook (https://...), better as TF_VAR_alert_webhook_url in the environment than in terraform.tfvars; or write alert_webhook_url = \"none\" to say you want no alerts."
  }
}

variable "heartbeat_url" {
  type        = string
  description = "A dead-man's switch (a healthchecks.io-style ping URL) the server calls every few minutes, so that a dead server, Docker or network is noticed from outside. A secret like alert_webhook_url. Required: \"none\" to say you want none."
  sensitive   = true
  default     = ""

  validation {
    condition     = var.heartbeat_url == "none" || can(regex("^https://[^\\s']+$", var.heartbeat_url))
    error_message = "heartbeat_url is not set (or not an https:// URL): without a dead-man's switch nothing notices a server that died, since a dead server sends no alert. Set it to a ping URL of a healthchecks service (https://...), better as TF_VAR_heartbeat_url in the environment; or write heartbeat_url = \"none\" to say you want none."
  }
}

variable "backup_s3_url" {
  type        = string
  description = "Object storage prefix for the daily ClickHouse backup, e.g. https://fsn1.your-objectstorage.com/BUCKET/wiki-events. Its keys are set on the server (deploy.md), never here."
  default     = ""
}

variable "backup_keep_days" {
  type        = number
  description = "Days a backup is kept: set the bucket's lifecycle rule to this (deploy.md)."
  default     = 14
}

variable "protection" {
  type        = bool
  description = "Hetzner's delete (and rebuild) protection on the server, the volume and the addresses: the console and the API refuse to delete them. The provider does not lift it to delete a server: set false for a deliberate replacement or destroy (deploy.md, section 6)."
  default     = true
}
