//go:build tools

// Package tools pins Karpenter's packages (and their test dependencies) so
// they can be built from the Go module proxy and run side by side with
// Outrigger's:
//   - the scheduling package, for its scheduling benchmark (bench/scheduling.sh);
//   - the kwok controller (package main sigs.k8s.io/karpenter/kwok, Karpenter
//     with its kwok cloud provider), as the provisioning-latency anchor
//     (bench/karpenter-kwok.sh).
package tools

import (
	_ "sigs.k8s.io/karpenter/kwok"
	_ "sigs.k8s.io/karpenter/pkg/controllers/provisioning/scheduling"
)
