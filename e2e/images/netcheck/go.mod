module kubeseed.invalid/e2e/netcheck

go 1.26
