terraform {
  required_version = ">= 1.6.0"

  required_providers {
    hcloud = {
      source  = "hetznercloud/hcloud"
      version = "~> 1.62.0"
    }
  }

  # Terraform's state holds no password (secrets are made on the server), but it does
  # hold the infrastructure's ids and addresses: keep it in an encrypted remote backend,
  # e.g. Hetzner Object Storage through the S3 backend with encryption at rest, or
  # terraform >= 1.7's client-side state encryption (OpenTofu). deploy.md, step 1.
}
