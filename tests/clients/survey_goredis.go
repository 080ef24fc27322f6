//go:build ignore

// survey_goredis.go - the go-redis v5 (golang-gopkg-redis.v5-dev, the
// gopkg.in/redis.v5 that Debian ships) driver of survey.py; the protocol is
// described at the top of survey_redispy.py. survey.py builds it offline in
// GOPATH mode against Debian's Go sources:
//
//	GO111MODULE=off GOPATH=/usr/share/gocode go build -o DIR/goredis survey_goredis.go
//	DIR/goredis CONFIG_JSON
//
// redis.Options has Password and DB (no username, no client name in v5).
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"time"

	"gopkg.in/redis.v5"
)

type config struct {
	Host     string  `json:"host"`
	Port     int     `json:"port"`
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
	if err == redis.Nil {
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
	opts := &redis.Options{Addr: fmt.Sprintf("%s:%d", cfg.Host, cfg.Port),
		ReadTimeout: 5 * time.Second}
	if cfg.Password != nil {
		opts.Password = *cfg.Password
	}
	if cfg.DB != nil {
		opts.DB = *cfg.DB
	}
	c := redis.NewClient(opts)
	getname := func() interface{} {
		cmd := redis.NewStringCmd("client", "getname")
		c.Process(cmd)
		return attempt(cmd.Result())
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
				attempt(c.Set(p+"s", "v1", 0).Result()),
				attempt(c.Get(p + "s").Result()),
				attempt(c.Get(p + "missing").Result()),
				attempt(c.HMSet(p+"h", map[string]string{"f1": "a", "f2": "b"}).Result()),
				attempt(c.HGetAll(p + "h").Result()),
				attempt(c.MGet(p+"s", p+"missing", p+"h").Result()),
				getname(),
				attempt(c.Set(p+"hot", "hotvalue", 0).Result()),
				attempt(c.Get(p + "hot").Result()),
			}
		} else {
			for i := 0; i < req.N; i++ {
				res = append(res, attempt(c.Get(req.Key).Result()))
			}
		}
		out.Encode(map[string]interface{}{"ok": res})
	}
	c.Close()
}
