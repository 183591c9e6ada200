// Package proto holds the attachd plugin protocol (attachd.proto) and the Go
// code generated from it. Plugin authors use plugins/sdk instead.
package proto

// Regenerate after editing attachd.proto. Needs protoc (Debian:
// protobuf-compiler) and the generators:
//
//	go install google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
//	go install google.golang.org/grpc/cmd/protoc-gen-go-grpc@v1.6.2
//
//go:generate protoc --go_out=. --go_opt=paths=source_relative --go-grpc_out=. --go-grpc_opt=paths=source_relative attachd.proto
