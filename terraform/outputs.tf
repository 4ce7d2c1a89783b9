output "ipv4_address" {
  description = "The server's IPv4 address (a primary IP that outlives the server): the A record of var.domain."
  value       = hcloud_primary_ip.address["ipv4"].ip_address
}

output "ipv6_address" {
  description = "The server's IPv6 address (the primary IP's /64, host ::1): the AAAA record of var.domain."
  value       = hcloud_server.wiki.ipv6_address
}

output "dashboard_url" {
  description = "Where the dashboard answers once DNS points at the server."
  value       = "https://${var.domain}/"
}

output "ssh" {
  description = "How to log in."
  value       = "ssh root@${hcloud_primary_ip.address["ipv4"].ip_address}"
}

output "dashboard_password_hint" {
  description = "Where the dashboard's password is: made on the server at first boot, never in terraform's state."
  value       = "ssh root@${hcloud_primary_ip.address["ipv4"].ip_address} grep ^DASH_PASSWORD= /mnt/wiki-events/.env"
}
