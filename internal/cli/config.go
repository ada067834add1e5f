package cli

import (
	"flag"
	"strconv"
	"strings"
)

// configFlags are the flags run and invoke share, with the environment as the fallback for each.
type configFlags struct {
	orgs       listFlag
	out        string
	baseURL    string
	secretARN  string
	s3Endpoint string
	kmsKeyID   string
	region     string
	maxPolls   int
}

func (c *configFlags) define(fs *flag.FlagSet, outUsage string) {
	fs.Var(&c.orgs, "org", "Atlas organization `ID` (24 hex); repeat or give a comma list (env "+EnvOrgIDs+"; else the secret's orgIds)")
	fs.StringVar(&c.out, "out", defaultOutputDir, outUsage)
	fs.StringVar(&c.baseURL, "base-url", DefaultBaseURL, "Atlas Admin API `URL`; http only for a loopback host (env "+EnvBaseURL+", then "+EnvABXBaseURL+")")
	fs.StringVar(&c.secretARN, "secret-arn", "", "read the Atlas credentials from this Secrets Manager secret `ARN` instead of the MONGODB_ATLAS_* variables (env "+EnvSecretARN+")")
	fs.StringVar(&c.s3Endpoint, "s3-endpoint", "", "custom S3 endpoint `URL`, path-style, e.g. versitygw or MinIO (env "+EnvS3Endpoint+")")
	fs.StringVar(&c.kmsKeyID, "kms-key-id", "", "KMS `KEY` id or ARN for SSE-KMS on S3 output; unset: SSE-S3 (env "+EnvKMSKeyID+")")
	fs.StringVar(&c.region, "region", "", "AWS `REGION` for S3 and Secrets Manager (default: AWS_REGION or the AWS profile)")
	fs.IntVar(&c.maxPolls, "max-polls", DefaultMaxPolls, "give up after `N` usage polls per org and month (env "+EnvMaxPolls+")")
}

// resolve applies the environment to flags not given and validates the result. needCreds says
// whether Atlas credentials must be present (from the environment or a secret). outFromABX lets
// ABX_BUCKET/ABX_PREFIX stand for --out, as in the functions.
func (c *configFlags) resolve(fs *flag.FlagSet, getenv func(string) string, needCreds, outFromABX bool) (Config, error) {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	env := func(flagName string, dst *string, names ...string) {
		if set[flagName] {
			return
		}
		for _, n := range names {
			if v := strings.TrimSpace(getenv(n)); v != "" {
				*dst = v
				return
			}
		}
	}
	env("base-url", &c.baseURL, EnvBaseURL, EnvABXBaseURL)
	env("secret-arn", &c.secretARN, EnvSecretARN)
	env("s3-endpoint", &c.s3Endpoint, EnvS3Endpoint)
	env("kms-key-id", &c.kmsKeyID, EnvKMSKeyID)

	var cfg Config
	var err error
	orgs := []string(c.orgs)
	if !set["org"] {
		orgs = splitList(getenv(EnvOrgIDs))
	}
	if cfg.OrgIDs, err = validateIDs("--org", orgs); err != nil {
		return Config{}, usagef("%v", err)
	}

	out := c.out
	if !set["out"] && outFromABX && getenv(EnvBucket) != "" {
		prefix := getenv(EnvPrefix)
		if prefix == "" {
			prefix = DefaultPrefix
		}
		out = "s3://" + getenv(EnvBucket) + "/" + prefix
	}
	if cfg.Out, err = ParseOutput(out); err != nil {
		return Config{}, usagef("%v", err)
	}

	if cfg.BaseURL, err = ParseBaseURL(c.baseURL); err != nil {
		return Config{}, usagef("--base-url: %v", err)
	}
	if c.s3Endpoint != "" {
		if _, err := ParseEndpoint(c.s3Endpoint); err != nil {
			return Config{}, usagef("--s3-endpoint: %v", err)
		}
	}
	if strings.ContainsAny(c.secretARN, " \t\r\n") {
		return Config{}, usagef("--secret-arn %q: no spaces allowed", c.secretARN)
	}
	cfg.SecretARN, cfg.S3Endpoint, cfg.KMSKeyID, cfg.Region = c.secretARN, c.s3Endpoint, c.kmsKeyID, c.region

	cfg.MaxPolls = c.maxPolls
	if v := getenv(EnvMaxPolls); !set["max-polls"] && v != "" {
		if cfg.MaxPolls, err = parsePositive(EnvMaxPolls, v, 10000); err != nil {
			return Config{}, usagef("%v", err)
		}
	}
	if cfg.MaxPolls < 1 || cfg.MaxPolls > 10000 {
		return Config{}, usagef("--max-polls %s: want a whole number from 1 to 10000", strconv.Itoa(cfg.MaxPolls))
	}

	if cfg.SecretARN == "" {
		creds, err := credentialsFromEnv(getenv)
		if err != nil && needCreds {
			return Config{}, usagef("%v", err)
		}
		cfg.Credentials = creds
	}
	return cfg, nil
}
