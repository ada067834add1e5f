//go:build !linux

package testenv

import "os/exec"

func killWithParent(cmd *exec.Cmd) {}
