module github.com/choreo-dev/choreo/deployments/k8s

go 1.26.8
