module github.com/sgtune/sgtune/e2e

go 1.26.0

require (
	github.com/nats-io/nats-server/v2 v2.15.3
	github.com/nats-io/nats.go v1.55.0
	github.com/rs/zerolog v1.35.1
	github.com/sgtune/sgtune/pkg/events v0.0.0
	github.com/sgtune/sgtune/pkg/natsx v0.0.0
	github.com/sgtune/sgtune/pkg/study v0.0.0
	github.com/sgtune/sgtune/services/reporter v0.0.0
	github.com/sgtune/sgtune/services/runner v0.0.0
	github.com/sgtune/sgtune/services/sampler v0.0.0
	github.com/sgtune/sgtune/services/validator v0.0.0
	github.com/sgtune/sgtune/sim v0.0.0
)

require (
	github.com/NVIDIA/go-nvml v0.13.4-1 // indirect
	github.com/antithesishq/antithesis-sdk-go v0.9.0-default-no-op // indirect
	github.com/beorn7/perks v1.0.1 // indirect
	github.com/c-bata/goptuna v0.9.0 // indirect
	github.com/cespare/xxhash/v2 v2.3.0 // indirect
	github.com/google/go-tpm v0.9.8 // indirect
	github.com/klauspost/compress v1.20.4 // indirect
	github.com/mattn/go-colorable v0.1.14 // indirect
	github.com/mattn/go-isatty v0.0.20 // indirect
	github.com/minio/highwayhash v1.0.4 // indirect
	github.com/munnerz/goautoneg v0.0.0-20191010083416-a7dc8b61c822 // indirect
	github.com/nats-io/jwt/v2 v2.8.3 // indirect
	github.com/nats-io/nkeys v0.4.17 // indirect
	github.com/nats-io/nuid v1.0.1 // indirect
	github.com/prometheus/client_golang v1.25.0 // indirect
	github.com/prometheus/client_model v0.6.3 // indirect
	github.com/prometheus/common v0.72.0 // indirect
	github.com/prometheus/procfs v0.22.0 // indirect
	go.yaml.in/yaml/v3 v3.0.6 // indirect
	golang.org/x/crypto v0.58.0 // indirect
	golang.org/x/sync v0.25.0 // indirect
	golang.org/x/sys v0.50.0 // indirect
	golang.org/x/time v0.16.0 // indirect
	gonum.org/v1/gonum v0.14.0 // indirect
	google.golang.org/protobuf v1.36.12 // indirect
)

replace (
	github.com/sgtune/sgtune/pkg/events => ../pkg/events
	github.com/sgtune/sgtune/pkg/natsx => ../pkg/natsx
	github.com/sgtune/sgtune/pkg/study => ../pkg/study
	github.com/sgtune/sgtune/services/reporter => ../services/reporter
	github.com/sgtune/sgtune/services/runner => ../services/runner
	github.com/sgtune/sgtune/services/sampler => ../services/sampler
	github.com/sgtune/sgtune/services/validator => ../services/validator
	github.com/sgtune/sgtune/sim => ../sim
)
