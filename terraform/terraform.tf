terraform {
  # terraform_data and provisioners on it need >= 1.4; the s3 backend's endpoints and
  # skip_* settings (backend.tf.example) >= 1.6
  required_version = ">= 1.6.0"

  required_providers {
    hcloud = {
      source = "hetznercloud/hcloud"
      # the newest release found (1.70.0; its source was read at v1.68.0, the newest
      # tag in the snapshot at hand): since 1.67 servers and primary IPs take a
      # location only (no datacenter), server types are per location (>= 1.53)
      version = "~> 1.70.0"
    }
  }

  # Terraform's state holds no password (secrets are made on the server; the alert URLs
  # only as a digest, user_data only as the provider's hash), but it does hold the
  # infrastructure's ids and addresses: keep it in a private bucket, e.g. Hetzner Object
  # Storage through the s3 backend (backend.tf.example). deploy.md, section 1, step 2.
}
