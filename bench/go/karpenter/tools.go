//go:build tools

// Package tools pins Karpenter's scheduling package (and its test
// dependencies) so its own scheduling benchmark can be built from the Go
// module proxy and run side by side with Outrigger's (bench/scheduling.sh).
package tools

import _ "sigs.k8s.io/karpenter/pkg/controllers/provisioning/scheduling"
