package config

import (
	"strings"
	"testing"
)

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestFromEnvDefaults(t *testing.T) {
	c, err := FromEnv(env(map[string]string{
		"ABX_BUCKET":     "my-bucket",
		"ABX_SECRET_ARN": "arn:aws:secretsmanager:us-east-1:123456789012:secret:atlas-abc",
		"ABX_ORG_IDS":    " 5f1a2b3c4d5e6f7a8b9c0d1e, 6a1b2c3d4e5f6a7b8c9d0e1f ,",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if c.Prefix != "atlas-billing" || c.BaseURL != "https://cloud.mongodb.com" || c.MaxPollAttempts != DefaultMaxPollAttempts {
		t.Errorf("defaults not applied: %+v", c)
	}
	if len(c.OrgIDs) != 2 || c.OrgIDs[1] != "6a1b2c3d4e5f6a7b8c9d0e1f" {
		t.Errorf("OrgIDs = %v", c.OrgIDs)
	}
}

func TestFromEnvProblems(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want []string
	}{
		{"nothing set", map[string]string{}, []string{"ABX_BUCKET is not set", "ABX_SECRET_ARN is not set"}},
		{"bad org", map[string]string{"ABX_BUCKET": "b", "ABX_SECRET_ARN": "s", "ABX_ORG_IDS": "../x"}, []string{"ABX_ORG_IDS"}},
		{"bad url", map[string]string{"ABX_BUCKET": "b", "ABX_SECRET_ARN": "s", "ABX_ATLAS_BASE_URL": "ftp://x"}, []string{"ABX_ATLAS_BASE_URL"}},
		{"url with credentials", map[string]string{"ABX_BUCKET": "b", "ABX_SECRET_ARN": "s", "ABX_ATLAS_BASE_URL": "https://u:p@x"}, []string{"plain base URL"}},
		{"bad prefix", map[string]string{"ABX_BUCKET": "b", "ABX_SECRET_ARN": "s", "ABX_PREFIX": "a/../b"}, []string{"ABX_PREFIX"}},
		{"bad attempts", map[string]string{"ABX_BUCKET": "b", "ABX_SECRET_ARN": "s", "ABX_MAX_POLL_ATTEMPTS": "0"}, []string{"ABX_MAX_POLL_ATTEMPTS"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := FromEnv(env(tt.env))
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}
