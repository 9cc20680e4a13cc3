package kafka

import (
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/kanon-dev/kanon/internal/kafkaopt"
)

// The schemes of the source's URLs.
const (
	Scheme          = "kafka"
	EventHubsScheme = "eventhubs"
)

// Event Hubs' Kafka endpoint: TLS on port 9093 of the namespace's host,
// SASL PLAIN with this user and the connection string as the password.
const (
	EventHubsDomain = ".servicebus.windows.net"
	EventHubsPort   = "9093"
	EventHubsUser   = "$ConnectionString"
)

// Defaults of Config.
const (
	DefaultMaxRecords = 5000
	DefaultStart      = "earliest"
)

// Config is a source as its URL names it.
type Config struct {
	Brokers []string
	Topic   string
	Group   string
	// TLS, CAFile and InsecureSkipVerify set up TLS; SASL, Username and
	// the password's file or environment variable, SASL.
	TLS                bool
	CAFile             string
	InsecureSkipVerify bool
	SASL               string
	Username           string
	PasswordFile       string
	PasswordEnv        string
	// Cluster names the cluster of events that do not name theirs.
	Cluster string
	// Start is where a group with no committed offset starts reading a
	// partition: earliest or latest.
	Start string
	// MaxRecords bounds the records of one poll.
	MaxRecords int
	// SessionTimeout is the group session's (0: franz-go's, 45s): how
	// long a replica that died holds its partitions.
	SessionTimeout time.Duration
}

// params are the kafka:// parameters, in the order URL writes them.
var params = []string{"group", "tls", "ca_file", "insecure_skip_verify", "sasl", "username", "password_file", "password_env",
	"cluster", "start", "max_records", "session_timeout"}

// ehParams are the eventhubs:// parameters.
var ehParams = []string{"group", "connection_string_file", "connection_string_env", "cluster", "start", "max_records",
	"session_timeout", "broker", "ca_file"}

// ParseURL reads a kafka:// or eventhubs:// URL:
//
//	kafka://BROKER[,BROKER]/TOPIC?group=NAME[&tls=true][&ca_file=PATH][&sasl=plain|scram-sha-256|scram-sha-512&username=USER&password_file=PATH|password_env=NAME]...
//	eventhubs://NAMESPACE/HUB?group=NAME&connection_string_file=PATH|connection_string_env=NAME...
//
// An eventhubs:// URL is the kafka:// URL of the namespace's Kafka
// endpoint (NAMESPACE.servicebus.windows.net:9093, TLS, SASL PLAIN with
// the user $ConnectionString and the connection string as password);
// broker= replaces the endpoint (a private endpoint, a test).
func ParseURL(raw string) (*Config, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("source %s: "+format, append([]any{raw}, args...)...)
	}
	// The brokers are cut off before url.Parse, which takes one host: a
	// list of them, IPv6 literals among them ([::1]:9092,[::1]:9093), is
	// not a URL's host.
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok {
		return nil, bad("want %s://BROKER[,BROKER]/TOPIC?group=NAME", Scheme)
	}
	hosts, tail, _ := strings.Cut(rest, "/")
	if strings.Contains(hosts, "@") {
		return nil, bad("credentials do not go in the URL: use password_file= or password_env=")
	}
	u, err := url.Parse(scheme + "://brokers/" + tail)
	if err != nil {
		return nil, bad("%v", err)
	}
	if u.Fragment != "" || u.Opaque != "" {
		return nil, bad("want %s://BROKER[,BROKER]/TOPIC?group=NAME", Scheme)
	}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return nil, bad("%v", err)
	}
	one := map[string]string{}
	allowed := params
	if u.Scheme == EventHubsScheme {
		allowed = ehParams
	}
	for k, vs := range q {
		if !slices.Contains(allowed, k) {
			return nil, bad("unknown parameter %q (%s)", k, strings.Join(allowed, ", "))
		}
		if len(vs) != 1 {
			return nil, bad("%s given %d times", k, len(vs))
		}
		if vs[0] == "" {
			return nil, bad("%s is empty", k)
		}
		one[k] = vs[0]
	}
	topic := strings.TrimPrefix(u.Path, "/")
	if topic == "" || strings.Contains(topic, "/") || !validName(topic) {
		return nil, bad("want %s://HOST/TOPIC with a topic of letters, digits, '.', '_' or '-'", u.Scheme)
	}
	c := &Config{Topic: topic, Group: one["group"], Cluster: one["cluster"], CAFile: one["ca_file"],
		Start: DefaultStart, MaxRecords: DefaultMaxRecords}
	switch u.Scheme {
	case Scheme:
		if c.Brokers, err = kafkaopt.SplitBrokers(hosts); err != nil {
			return nil, bad("%v", err)
		}
		for k, dst := range map[string]*bool{"tls": &c.TLS, "insecure_skip_verify": &c.InsecureSkipVerify} {
			if v, ok := one[k]; ok {
				if *dst, err = strconv.ParseBool(v); err != nil {
					return nil, bad("%s: %q is not true or false", k, v)
				}
			}
		}
		c.SASL, c.Username, c.PasswordFile, c.PasswordEnv = one["sasl"], one["username"], one["password_file"], one["password_env"]
	case EventHubsScheme:
		host := hosts
		if host == "" || strings.ContainsAny(host, ":,[]%?#") {
			return nil, bad("want %s://NAMESPACE/HUB", EventHubsScheme)
		}
		if !strings.Contains(host, ".") {
			host += EventHubsDomain
		}
		broker := host + ":" + EventHubsPort
		if b, ok := one["broker"]; ok {
			broker = b
		}
		if err := kafkaopt.ValidBroker(broker); err != nil {
			return nil, bad("%v", err)
		}
		c.Brokers, c.TLS, c.SASL, c.Username = []string{broker}, true, kafkaopt.SASLPlain, EventHubsUser
		c.PasswordFile, c.PasswordEnv = one["connection_string_file"], one["connection_string_env"]
		if c.PasswordFile == "" && c.PasswordEnv == "" {
			return nil, bad("the connection string: set connection_string_file= or connection_string_env=")
		}
	default:
		return nil, bad("not a %s:// or %s:// URL", Scheme, EventHubsScheme)
	}
	if c.Group == "" {
		return nil, bad("missing group=NAME: the consumer group the replicas share")
	}
	if err := kafkaopt.ValidSASL(c.SASL); err != nil {
		return nil, bad("sasl: %v", err)
	}
	switch {
	case c.SASL == "" && (c.Username != "" || c.PasswordFile != "" || c.PasswordEnv != ""):
		return nil, bad("username and password need sasl= (%s)", kafkaopt.Mechanisms)
	case c.SASL != "" && c.Username == "":
		return nil, bad("sasl needs username=")
	case c.SASL != "" && (c.PasswordFile == "") == (c.PasswordEnv == ""):
		return nil, bad("sasl needs one of password_file= or password_env=")
	case !c.TLS && (c.CAFile != "" || c.InsecureSkipVerify):
		return nil, bad("ca_file and insecure_skip_verify need tls=true")
	}
	if v, ok := one["start"]; ok {
		if v != "earliest" && v != "latest" {
			return nil, bad("start: %q is not earliest or latest", v)
		}
		c.Start = v
	}
	if v, ok := one["max_records"]; ok {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			return nil, bad("max_records: %q is not a positive number", v)
		}
		c.MaxRecords = n
	}
	if v, ok := one["session_timeout"]; ok {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return nil, bad("session_timeout: %q is not a positive duration", v)
		}
		c.SessionTimeout = d
	}
	return c, nil
}

// validName reports whether s is a valid Kafka topic name.
func validName(s string) bool {
	if len(s) > 249 || s == "." || s == ".." {
		return false
	}
	for i := 0; i < len(s); i++ {
		b := s[i]
		if !(b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' || b == '.' || b == '_' || b == '-') {
			return false
		}
	}
	return true
}

// URL is the kafka:// URL of c: ParseURL(c.URL()) is c.
func (c *Config) URL() string {
	q := url.Values{}
	set := func(k, v string) {
		if v != "" {
			q.Set(k, v)
		}
	}
	set("group", c.Group)
	if c.TLS {
		q.Set("tls", "true")
	}
	set("ca_file", c.CAFile)
	if c.InsecureSkipVerify {
		q.Set("insecure_skip_verify", "true")
	}
	set("sasl", c.SASL)
	set("username", c.Username)
	set("password_file", c.PasswordFile)
	set("password_env", c.PasswordEnv)
	set("cluster", c.Cluster)
	if c.Start != DefaultStart {
		set("start", c.Start)
	}
	if c.MaxRecords != DefaultMaxRecords {
		q.Set("max_records", strconv.Itoa(c.MaxRecords))
	}
	if c.SessionTimeout > 0 {
		q.Set("session_timeout", c.SessionTimeout.String())
	}
	u := url.URL{Scheme: Scheme, Host: strings.Join(c.Brokers, ","), Path: "/" + c.Topic, RawQuery: q.Encode()}
	return u.String()
}

// Name names the source in logs and records' origins: kafka:TOPIC.
func (c *Config) Name() string { return Scheme + ":" + c.Topic }
