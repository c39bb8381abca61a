module github.com/sgtune/sgtune/pkg/study

go 1.26

require (
	github.com/sgtune/sgtune/pkg/events v0.0.0
	go.yaml.in/yaml/v3 v3.0.6
)

replace github.com/sgtune/sgtune/pkg/events => ../events
