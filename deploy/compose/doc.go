// Package compose has no code: its tests check the container setup against
// the services' code. They load docker-compose.yml with compose-go and check
// services, build settings, ports, health checks, dependencies and every
// BULWARK_* variable (against the variables the code reads), check
// deploy/Dockerfile and deploy/config/gateway.yaml, and build each service
// with deploy/build.sh, the command the Dockerfile runs.
package compose
