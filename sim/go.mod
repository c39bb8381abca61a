module github.com/sgtune/sgtune/sim

go 1.26

require github.com/sgtune/sgtune/pkg/study v0.0.0

require (
	github.com/sgtune/sgtune/pkg/events v0.0.0 // indirect
	go.yaml.in/yaml/v3 v3.0.6 // indirect
)

replace (
	github.com/sgtune/sgtune/pkg/events => ../pkg/events
	github.com/sgtune/sgtune/pkg/study => ../pkg/study
)
