# Plan-time checks: a server type or location that does not exist (or a type Hetzner
# has deprecated, or one not offered in the location) fails `terraform plan`, before
# anything is created. Data sources are read during plan.
data "hcloud_server_type" "selected" {
  name = var.server_type
}

data "hcloud_location" "selected" {
  name = var.location
}

locals {
  # the type as offered in the location (provider >= 1.53: per-location availability and
  # deprecation); null when the location does not offer it
  server_type_here = one([
    for o in data.hcloud_server_type.selected.locations : o
    if o.name == data.hcloud_location.selected.name
  ])
  # "the settings": everything the server needs that is not a secret. Secrets are made on
  # the server at first boot (deploy/envfile.py) and never pass through terraform.
  settings = {
    WIKI_EVENTS_CONTACT   = var.contact
    WIKI_EVENTS_VERSION   = var.git_ref
    DOMAIN                = var.domain
    ACME_EMAIL            = var.acme_email
    DASH_USER             = "wiki"
    DATA_DIR              = "/mnt/wiki-events"
    BRONZE_RETENTION_DAYS = tostring(var.bronze_retention_days)
    SILVER_RETENTION_DAYS = tostring(var.silver_retention_days)
    ALERT_WEBHOOK_URL     = var.alert_webhook_url
    BACKUP_S3_URL         = var.backup_s3_url
    BACKUP_KEEP_DAYS      = tostring(var.backup_keep_days)
  }
}

resource "hcloud_ssh_key" "admin" {
  for_each   = var.ssh_public_keys
  name       = "${var.name}-${each.key}"
  public_key = each.value

  # the first resources terraform creates: nothing exists yet when these fail
  lifecycle {
    precondition {
      condition     = local.server_type_here != null
      error_message = "server_type ${var.server_type} is not offered in ${var.location}."
    }
    precondition {
      condition     = !try(local.server_type_here.is_deprecated, true)
      error_message = "server_type ${var.server_type} is deprecated in ${var.location}; choose a current type (cx23, cx33, cx43, cx53)."
    }
    precondition {
      condition     = var.silver_retention_days >= var.bronze_retention_days
      error_message = "silver_retention_days (${var.silver_retention_days}) is shorter than bronze_retention_days (${var.bronze_retention_days}): silver keeps at least as long as bronze."
    }
  }
}

# Only the web ports for everyone, SSH for the administrators, nothing else.
resource "hcloud_firewall" "web" {
  name = "${var.name}-web"

  rule {
    description = "HTTP (redirects to HTTPS, ACME challenges)"
    direction   = "in"
    protocol    = "tcp"
    port        = "80"
    source_ips  = ["0.0.0.0/0", "::/0"]
  }

  rule {
    description = "HTTPS: the dashboard behind Caddy"
    direction   = "in"
    protocol    = "tcp"
    port        = "443"
    source_ips  = ["0.0.0.0/0", "::/0"]
  }

  rule {
    description = "SSH from the administrators' networks"
    direction   = "in"
    protocol    = "tcp"
    port        = "22"
    source_ips  = var.admin_cidrs
  }
}

# All state lives here: ClickHouse, RabbitMQ's messages, the reader's checkpoint, dbt's
# marker, Caddy's certificates, .env with the secrets. A replaced server gets it back.
resource "hcloud_volume" "data" {
  name              = "${var.name}-data"
  size              = var.volume_size
  location          = data.hcloud_location.selected.name
  format            = "ext4"
  delete_protection = var.protection
}

# The addresses outlive the server: DNS stays right when the server is replaced.
resource "hcloud_primary_ip" "address" {
  for_each          = toset(["ipv4", "ipv6"])
  name              = "${var.name}-${each.key}"
  type              = each.key
  location          = data.hcloud_location.selected.name
  assignee_type     = "server"
  auto_delete       = false
  delete_protection = var.protection
}

resource "hcloud_server" "wiki" {
  name               = var.name
  server_type        = data.hcloud_server_type.selected.name
  image              = var.image
  location           = data.hcloud_location.selected.name
  ssh_keys           = [for key in hcloud_ssh_key.admin : key.id]
  firewall_ids       = [hcloud_firewall.web.id]
  delete_protection  = var.protection
  rebuild_protection = var.protection

  # No secret in here: the settings as JSON, the volume's device, where the code is.
  # A change (domain, version, settings) replaces the server; the volume and the
  # addresses stay, so a replacement keeps every event, the secrets and the DNS.
  user_data = templatefile("${path.module}/cloud-init.yaml.tftpl", {
    settings_b64  = base64encode(jsonencode(local.settings))
    volume_device = hcloud_volume.data.linux_device
    repo_url      = var.repo_url
    git_ref       = var.git_ref
  })

  public_net {
    ipv4_enabled = true
    ipv4         = hcloud_primary_ip.address["ipv4"].id
    ipv6_enabled = true
    ipv6         = hcloud_primary_ip.address["ipv6"].id
  }

  labels = {
    app = var.name
  }

  lifecycle {
    # adding an administrator's key must not replace the server (add it to
    # /root/.ssh/authorized_keys by hand); everything else that changes does
    ignore_changes = [ssh_keys]
  }
}

resource "hcloud_volume_attachment" "data" {
  volume_id = hcloud_volume.data.id
  server_id = hcloud_server.wiki.id
  automount = false # cloud-init mounts it at /mnt/wiki-events
}
