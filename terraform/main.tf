resource "hcloud_ssh_key" "admin" {
  for_each   = var.ssh_public_keys
  name       = "${var.name}-${each.key}"
  public_key = each.value
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

resource "hcloud_volume" "clickhouse" {
  name              = "${var.name}-clickhouse"
  size              = var.volume_size
  location          = var.location
  format            = "ext4"
  delete_protection = var.protection
}

# Passwords are made here and reach the server only through cloud-init's .env.
resource "random_password" "service" {
  for_each = toset(["clickhouse_loader", "clickhouse_dbt", "clickhouse_dashboard",
  "rabbitmq_admin", "rabbitmq_reader", "rabbitmq_loader", "dashboard"])
  length  = 32
  special = false
}

locals {
  env_file = join("\n", [
    "WIKI_EVENTS_CONTACT=${var.contact}",
    "DOMAIN=${var.domain}",
    "ACME_EMAIL=${var.acme_email}",
    "DASH_USER=wiki",
    "DASH_PASSWORD_HASH=${bcrypt(random_password.service["dashboard"].result)}",
    "CLICKHOUSE_LOADER_PASSWORD=${random_password.service["clickhouse_loader"].result}",
    "CLICKHOUSE_DBT_PASSWORD=${random_password.service["clickhouse_dbt"].result}",
    "CLICKHOUSE_DASHBOARD_PASSWORD=${random_password.service["clickhouse_dashboard"].result}",
    "CLICKHOUSE_DATA_DIR=/mnt/clickhouse",
    "RABBITMQ_VHOST=wiki-events",
    "RABBITMQ_ADMIN_USER=admin",
    "RABBITMQ_ADMIN_PASSWORD=${random_password.service["rabbitmq_admin"].result}",
    "RABBITMQ_READER_PASSWORD=${random_password.service["rabbitmq_reader"].result}",
    "RABBITMQ_LOADER_PASSWORD=${random_password.service["rabbitmq_loader"].result}",
    "BRONZE_RETENTION_DAYS=${var.bronze_retention_days}",
    "",
  ])
}

resource "hcloud_server" "wiki" {
  name               = var.name
  server_type        = var.server_type
  image              = var.image
  location           = var.location
  ssh_keys           = [for key in hcloud_ssh_key.admin : key.id]
  firewall_ids       = [hcloud_firewall.web.id]
  delete_protection  = var.protection
  rebuild_protection = var.protection

  user_data = templatefile("${path.module}/cloud-init.yaml.tftpl", {
    env_b64       = base64encode(local.env_file)
    volume_device = hcloud_volume.clickhouse.linux_device
    repo_url      = var.repo_url
    git_ref       = var.git_ref
  })

  public_net {
    ipv4_enabled = true
    ipv6_enabled = true
  }

  labels = {
    app = var.name
  }

  lifecycle {
    # the bcrypt hash differs on every plan; a new cloud-init must not replace the server
    ignore_changes = [user_data, ssh_keys]
  }
}

resource "hcloud_volume_attachment" "clickhouse" {
  volume_id = hcloud_volume.clickhouse.id
  server_id = hcloud_server.wiki.id
  automount = false # cloud-init mounts it at /mnt/clickhouse
}
