output "ipv4_address" {
  description = "The server's IPv4 address: the A record of var.domain."
  value       = hcloud_server.wiki.ipv4_address
}

output "ipv6_address" {
  description = "The server's IPv6 address: the AAAA record of var.domain."
  value       = hcloud_server.wiki.ipv6_address
}

output "dashboard_url" {
  description = "Where the dashboard answers once DNS points at the server."
  value       = "https://${var.domain}/"
}

output "ssh" {
  description = "How to log in."
  value       = "ssh root@${hcloud_server.wiki.ipv4_address}"
}

output "dashboard_password" {
  description = "Basic-auth password of the dashboard (user wiki): terraform output -raw dashboard_password."
  value       = random_password.service["dashboard"].result
  sensitive   = true
}
