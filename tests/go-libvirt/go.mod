module go-libvirt-check

go 1.19

require github.com/digitalocean/go-libvirt v0.0.0

// A local copy of go-libvirt 35b634c (its last commit that builds with Debian 12's Go 1.19 and
// needs nothing outside the standard library); see README.md here.
replace github.com/digitalocean/go-libvirt => ./go-libvirt
