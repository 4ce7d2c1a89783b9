# Plan-time checks: a server type or location that does not exist (or a type Hetzner
# has deprecated, or one not offered in the location) fails `terraform plan`, before
# anything is created. Data sources are read during plan.
data "hcloud_server_type" "selected" {
  name = var.server_type
}

data "hcloud_location" "selected" {
  name = var.location
}

# The SSH keys already in the Hetzner project. Hetzner holds a public key once: creating
# a second copy of one (under another name) is refused, so a key of ssh_public_keys that
# is already there is used as it is; existing_ssh_key_names names more of them.
data "hcloud_ssh_keys" "project" {}

data "hcloud_ssh_key" "named" {
  for_each = toset(var.existing_ssh_key_names)
  name     = each.value
}

locals {
  # the type as offered in the location (provider >= 1.53: per-location availability and
  # deprecation); null when the location does not offer it
  server_type_here = one([
    for o in data.hcloud_server_type.selected.locations : o
    if o.name == data.hcloud_location.selected.name
  ])
  # "the settings": what the server needs that is not a secret. The first boot reads them
  # from user-data; later changes reach the running server over SSH
  # (terraform_data.server_settings). The version is not one of them: the server runs the
  # commit checked out in /opt/wiki-events (git_ref at first boot, then deploy.md
  # section 3), never a tag terraform would set without the code.
  settings = {
    WIKI_EVENTS_CONTACT   = var.contact
    DOMAIN                = var.domain
    ACME_EMAIL            = var.acme_email
    DASH_USER             = "wiki"
    DATA_DIR              = "/mnt/wiki-events"
    BRONZE_RETENTION_DAYS = tostring(var.bronze_retention_days)
    SILVER_RETENTION_DAYS = tostring(var.silver_retention_days)
    BACKUP_S3_URL         = var.backup_s3_url
    BACKUP_KEEP_DAYS      = tostring(var.backup_keep_days)
  }
  # secret settings: never in user-data (the metadata service serves it to anything on
  # the server) nor in the state (only their digest is, below); sent over SSH, read by
  # envfile.py from a file on stdin, never on a command line. "none" = deliberately empty.
  secret_settings = {
    ALERT_WEBHOOK_URL = var.alert_webhook_url == "none" ? "" : var.alert_webhook_url
    HEARTBEAT_URL     = var.heartbeat_url == "none" ? "" : var.heartbeat_url
  }
  # an OpenSSH public key without its comment ("type base64"): what Hetzner compares
  ssh_key_bodies = {
    for name, key in var.ssh_public_keys : name => join(" ", regex("^(\\S+)\\s+(\\S+)", trimspace(key)))
  }
  project_ssh_keys = [
    for k in data.hcloud_ssh_keys.project.ssh_keys : {
      id   = tostring(k.id)
      body = try(join(" ", regex("^(\\S+)\\s+(\\S+)", trimspace(k.public_key))), k.public_key)
      # a key this configuration made is named "<name>-<key>" and stays its own
      name = k.name
    }
  ]
  # keys of ssh_public_keys already in the project under another name: used, not created
  reused_ssh_keys = {
    for name, body in local.ssh_key_bodies : name => [
      for k in local.project_ssh_keys : k.id if k.body == body && k.name != "${var.name}-${name}"
    ][0]
    if anytrue([for k in local.project_ssh_keys : k.body == body && k.name != "${var.name}-${name}"])
  }
  new_ssh_keys = {
    for name, key in var.ssh_public_keys : name => key if !contains(keys(local.reused_ssh_keys), name)
  }
}

# Checks that need more than one variable or what Hetzner offers; the resources below
# wait for it, so when one fails nothing has been created yet.
resource "terraform_data" "preflight" {
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
    precondition {
      condition     = length(var.ssh_public_keys) + length(var.existing_ssh_key_names) > 0
      error_message = "No SSH key: give ssh_public_keys or existing_ssh_key_names (keys already in the Hetzner project); terraform itself logs in to send the settings."
    }
  }
}

resource "hcloud_ssh_key" "admin" {
  for_each   = local.new_ssh_keys
  name       = "${var.name}-${each.key}"
  public_key = each.value
  depends_on = [terraform_data.preflight]
}

# Only the web ports for everyone, SSH for the administrators, nothing else.
resource "hcloud_firewall" "web" {
  name       = "${var.name}-web"
  depends_on = [terraform_data.preflight]

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
    description = "HTTPS 8443: ClickHouse's HTTP interface for the analysts, behind Caddy (ClickHouse's own users)"
    direction   = "in"
    protocol    = "tcp"
    port        = "8443"
    source_ips  = var.analyst_cidrs
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
  depends_on        = [terraform_data.preflight]

  lifecycle {
    # every event is on it: no plan may delete it (a change of location would)
    prevent_destroy = true
  }
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
  depends_on        = [terraform_data.preflight]
}

resource "hcloud_server" "wiki" {
  name               = var.name
  server_type        = data.hcloud_server_type.selected.name
  image              = var.image
  location           = data.hcloud_location.selected.name
  firewall_ids       = [hcloud_firewall.web.id]
  delete_protection  = var.protection
  rebuild_protection = var.protection
  # a deliberate replacement (deploy.md, section 6) shuts the system down before deleting
  shutdown_before_deletion = true

  ssh_keys = concat(
    [for key in hcloud_ssh_key.admin : key.id],
    values(local.reused_ssh_keys),
    [for key in data.hcloud_ssh_key.named : tostring(key.id)],
  )

  # Read once, at first boot. No secret in here: the settings as JSON, the volume's
  # device, where the code is.
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
    # The provider applies a change of these only by replacing the server (ForceNew in
    # hetznercloud/hcloud v1.68.0, internal/server/resource.go; so is location, which
    # the attachment's prevent_destroy below refuses). An ordinary apply must never
    # replace it: settings go over SSH (terraform_data.server_settings), an added key
    # into /root/.ssh/authorized_keys by hand, a new image only with a deliberate
    # replacement (deploy.md, section 6). server_type changes in place (the provider
    # powers the server off, changes the type: deploy.md, section 6).
    ignore_changes = [user_data, image, ssh_keys]
  }
}

resource "hcloud_volume_attachment" "data" {
  volume_id = hcloud_volume.data.id
  server_id = hcloud_server.wiki.id
  automount = false # cloud-init mounts it at /mnt/wiki-events

  lifecycle {
    # Destroying the attachment detaches the volume: under a running stack, from a
    # server whose delete may then fail (delete protection: the provider does not lift
    # it, hetznercloud/terraform-provider-hcloud#1206). Any plan that would (a replaced
    # or moved server, a destroy) fails here instead; the deliberate way: deploy.md,
    # section 6.
    prevent_destroy = true
  }
}

# The settings after the first boot, and the secret ones always, over SSH as root (from
# admin_cidrs: the firewall lets nothing else reach port 22). Runs again when the server,
# a setting or a secret changes; waits for the first boot, refuses if it failed.
resource "terraform_data" "server_settings" {
  triggers_replace = {
    server   = hcloud_server.wiki.id
    settings = local.settings
    secrets  = sha256(jsonencode(local.secret_settings)) # a digest: no secret in the state
  }
  depends_on = [hcloud_volume_attachment.data]

  connection {
    type        = "ssh"
    host        = hcloud_primary_ip.address["ipv4"].ip_address
    user        = "root"
    private_key = var.ssh_private_key_file == "" ? null : file(pathexpand(var.ssh_private_key_file))
    timeout     = "15m"
  }

  # uploaded into /root (mode 700 on Ubuntu: no other user reaches what is in it)
  provisioner "file" {
    content     = jsonencode(local.settings)
    destination = "/root/wiki-events-settings.json"
  }

  provisioner "file" {
    content     = "${local.secret_settings.ALERT_WEBHOOK_URL}\n${local.secret_settings.HEARTBEAT_URL}\n"
    destination = "/root/wiki-events-secret-settings"
  }

  # terraform joins these lines into one sh script without `set -e` (remote-exec's
  # generateScripts): the first line makes it stop at its first failure
  provisioner "remote-exec" {
    inline = [
      "set -eu",
      "trap 'rm -f /root/wiki-events-secret-settings /root/wiki-events-settings.json' EXIT",
      "rc=0; cloud-init status --wait >/dev/null || rc=$?",
      "if [ $rc -eq 1 ]; then echo 'wiki-events: the first boot failed: cloud-init status --long, /var/log/cloud-init-output.log (deploy.md, section 1)' >&2; exit 1; fi",
      "cd /opt/wiki-events",
      "install -m 644 /root/wiki-events-settings.json /etc/wiki-events/settings.json",
      "python3 deploy/envfile.py init /etc/wiki-events/settings.json /mnt/wiki-events/.env",
      "python3 deploy/envfile.py set /mnt/wiki-events/.env ALERT_WEBHOOK_URL HEARTBEAT_URL < /root/wiki-events-secret-settings",
      "deploy/bin/stack up",
    ]
  }
}
