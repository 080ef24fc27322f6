//go:build ignore

// survey_redigo.go - the redigo (golang-github-gomodule-redigo-dev) driver of
// survey.py; the protocol is described at the top of survey_redispy.py.
// survey.py builds it offline in GOPATH mode against Debian's Go sources:
//
//	GO111MODULE=off GOPATH=/usr/share/gocode go build -o DIR/redigo survey_redigo.go
//	DIR/redigo CONFIG_JSON
//
// A redis.Pool with a Dial function, as redigo's users set it up; options
// DialClientName, DialUsername, DialPassword, DialDatabase.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/gomodule/redigo/redis"
)

type config struct {
	Host     string  `json:"host"`
	Port     int     `json:"port"`
	Name     *string `json:"name"`
	User     *string `json:"user"`
	Password *string `json:"password"`
	DB       *int    `json:"db"`
}

type request struct {
	Op  string `json:"op"`
	P   string `json:"p"`
	Key string `json:"key"`
	N   int    `json:"n"`
}

func attempt(v interface{}, err error) interface{} {
	if err == redis.ErrNil {
		return nil
	}
	if err != nil {
		return map[string]string{"err": fmt.Sprintf("%T: %v", err, err)}
	}
	return v
}

func main() {
	var cfg config
	if err := json.Unmarshal([]byte(os.Args[1]), &cfg); err != nil {
		panic(err)
	}
	opts := []redis.DialOption{redis.DialReadTimeout(5 * time.Second)}
	if cfg.Name != nil {
		opts = append(opts, redis.DialClientName(*cfg.Name))
	}
	if cfg.User != nil {
		opts = append(opts, redis.DialUsername(*cfg.User))
	}
	if cfg.Password != nil {
		opts = append(opts, redis.DialPassword(*cfg.Password))
	}
	if cfg.DB != nil {
		opts = append(opts, redis.DialDatabase(*cfg.DB))
	}
	addr := fmt.Sprintf("%s:%d", cfg.Host, cfg.Port)
	pool := &redis.Pool{MaxIdle: 3, Dial: func() (redis.Conn, error) {
		return redis.Dial("tcp", addr, opts...)
	}}
	do := func(cmd string, args ...interface{}) (interface{}, error) {
		c := pool.Get()
		defer c.Close()
		return c.Do(cmd, args...)
	}
	str := func(cmd string, args ...interface{}) interface{} {
		return attempt(redis.String(do(cmd, args...)))
	}
	in := bufio.NewScanner(os.Stdin)
	out := json.NewEncoder(os.Stdout)
	for in.Scan() {
		var req request
		if err := json.Unmarshal(in.Bytes(), &req); err != nil {
			panic(err)
		}
		var res []interface{}
		if req.Op == "workload" {
			p := req.P
			res = []interface{}{
				str("SET", p+"s", "v1"),
				str("GET", p+"s"),
				str("GET", p+"missing"),
				attempt(redis.Int(do("HSET", p+"h", "f1", "a", "f2", "b"))),
				attempt(redis.StringMap(do("HGETALL", p+"h"))),
				attempt(redis.Strings(do("MGET", p+"s", p+"missing", p+"h"))),
				str("CLIENT", "GETNAME"),
				str("SET", p+"hot", "hotvalue"),
				str("GET", p+"hot"),
			}
		} else {
			for i := 0; i < req.N; i++ {
				res = append(res, str("GET", req.Key))
			}
		}
		out.Encode(map[string]interface{}{"ok": res})
	}
	pool.Close()
}
