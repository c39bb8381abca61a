module github.com/sgtune/sgtune/pkg/events

go 1.26
