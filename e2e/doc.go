// Package e2e holds sgtune's whole-system tests: a study run through all four
// services on an embedded JetStream server with the simulator as a real child
// process, and the CLI driven as a user would drive it. The compose test
// (build tag compose) runs the same against real containers.
package e2e
