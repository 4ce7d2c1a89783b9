provider "hcloud" {
  token = var.hcloud_token
}
