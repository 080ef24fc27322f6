# survey_ruby.rb - the ruby-redis (redis-rb) driver of survey.py; the protocol
# is described at the top of survey_redispy.py.
#
#   ruby survey_ruby.rb CONFIG_JSON
#
# style "hiredis": driver: :hiredis (ruby-hiredis); "url": the url: option.
require "json"
require "redis"

$stdout.sync = true
cfg = JSON.parse(ARGV[0])
opts = { host: cfg["host"], port: cfg["port"], timeout: 5 }
case cfg["style"]
when "url"
  auth = cfg.key?("password") ? "#{cfg["user"]}:#{cfg["password"]}@" : ""
  opts = { url: "redis://#{auth}#{cfg["host"]}:#{cfg["port"]}/#{cfg.fetch("db", 0)}", timeout: 5 }
  opts[:id] = cfg["name"] if cfg.key?("name")
else
  opts[:id] = cfg["name"] if cfg.key?("name")
  opts[:username] = cfg["user"] if cfg.key?("user")
  opts[:password] = cfg["password"] if cfg.key?("password")
  opts[:db] = cfg["db"] if cfg.key?("db")
  if cfg["style"] == "hiredis"
    require "redis/connection/hiredis"
    opts[:driver] = :hiredis
  end
end
c = Redis.new(**opts)

def attempt
  yield
rescue Redis::BaseError => e
  { "err" => "#{e.class}: #{e.message}" }
end

def workload(c, p)
  [
    attempt { c.set(p + "s", "v1") },
    attempt { c.get(p + "s") },
    attempt { c.get(p + "missing") },
    attempt { c.hset(p + "h", "f1", "a", "f2", "b") },
    attempt { c.hgetall(p + "h") },
    attempt { c.mget(p + "s", p + "missing", p + "h") },
    attempt { c.client(:getname) },
    attempt { c.set(p + "hot", "hotvalue") },
    attempt { c.get(p + "hot") },
  ]
end

$stdin.each_line do |line|
  req = JSON.parse(line)
  out = begin
    if req["op"] == "workload"
      { "ok" => workload(c, req["p"]) }
    else
      { "ok" => Array.new(req["n"]) { attempt { c.get(req["key"]) } } }
    end
  rescue StandardError => e
    { "error" => "#{e.class}: #{e.message}" }
  end
  puts JSON.generate(out)
end
