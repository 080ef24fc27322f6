<?php
// survey_php.php - the phpredis (php-redis) and predis (php-predis) driver of
// survey.py; the protocol is described at the top of survey_redispy.py.
//
//   php survey_php.php phpredis|predis CONFIG_JSON
//
// phpredis is set up as its users write it: connect(), auth(), select(),
// client('setname'); style "pconnect": pconnect(); style "context": the
// credentials in connect()'s context ['auth' => ...]. predis takes its
// connection parameters (password, username, database); style "uri": as a
// redis:// URI; a name is set with client('setname') (predis 1.1 has no
// option for it).
error_reporting(E_ALL & ~E_DEPRECATED);
[$self, $lib, $json] = $argv;
$cfg = json_decode($json, true);
$style = $cfg['style'] ?? '';

if ($lib === 'phpredis') {
    if (!class_exists('Redis')) { fwrite(STDERR, "phpredis not loaded\n"); exit(3); }
    $c = new Redis();
    if ($style === 'pconnect') {
        $c->pconnect($cfg['host'], $cfg['port'], 5.0);
    } elseif ($style === 'context') {
        $auth = isset($cfg['user']) ? [$cfg['user'], $cfg['password']] : $cfg['password'];
        $c->connect($cfg['host'], $cfg['port'], 5.0, null, 0, 5.0, ['auth' => $auth]);
    } else {
        $c->connect($cfg['host'], $cfg['port'], 5.0);
    }
    $c->setOption(Redis::OPT_READ_TIMEOUT, 5.0);
    if (isset($cfg['password']) && $style !== 'context') {
        $c->auth(isset($cfg['user']) ? [$cfg['user'], $cfg['password']] : $cfg['password']);
    }
    if (array_key_exists('db', $cfg)) $c->select($cfg['db']);
    if (isset($cfg['name'])) $c->client('setname', $cfg['name']);
    $getname = function () use ($c) { return $c->client('getname'); };
} else {
    $autoload = '/usr/share/php/Predis/autoload.php';
    if (!file_exists($autoload)) { fwrite(STDERR, "predis not installed\n"); exit(3); }
    require $autoload;
    if ($style === 'uri') {
        $auth = isset($cfg['password']) ? (($cfg['user'] ?? '') . ':' . $cfg['password'] . '@') : '';
        $params = "redis://$auth{$cfg['host']}:{$cfg['port']}/" . ($cfg['db'] ?? 0);
    } else {
        $params = ['scheme' => 'tcp', 'host' => $cfg['host'], 'port' => $cfg['port'],
                   'read_write_timeout' => 5];
        if (isset($cfg['user'])) $params['username'] = $cfg['user'];
        if (isset($cfg['password'])) $params['password'] = $cfg['password'];
        if (array_key_exists('db', $cfg)) $params['database'] = $cfg['db'];
    }
    $c = new Predis\Client($params);
    if (isset($cfg['name'])) $c->client('setname', $cfg['name']);
    $getname = function () use ($c) { return $c->client('getname'); };
}

function attempt($c, $fn) {
    try {
        if ($c instanceof Redis) $c->clearLastError();
        $v = $fn();
        if ($v instanceof Predis\Response\Status) $v = (string)$v;
        if ($v === false && $c instanceof Redis && $c->getLastError() !== null) {
            return ['err' => $c->getLastError()];
        }
        return $v;
    } catch (Exception $e) {
        return ['err' => get_class($e) . ': ' . $e->getMessage()];
    }
}

function workload($c, $getname, $p) {
    return [
        attempt($c, fn() => $c->set($p . 's', 'v1')),
        attempt($c, fn() => $c->get($p . 's')),
        attempt($c, fn() => $c->get($p . 'missing')),
        attempt($c, fn() => $c->hmset($p . 'h', ['f1' => 'a', 'f2' => 'b'])),
        attempt($c, fn() => $c->hgetall($p . 'h')),
        attempt($c, fn() => $c->mget([$p . 's', $p . 'missing', $p . 'h'])),
        attempt($c, $getname),
        attempt($c, fn() => $c->set($p . 'hot', 'hotvalue')),
        attempt($c, fn() => $c->get($p . 'hot')),
    ];
}

while (($line = fgets(STDIN)) !== false) {
    $req = json_decode($line, true);
    try {
        if ($req['op'] === 'workload') {
            $out = ['ok' => workload($c, $getname, $req['p'])];
        } else {
            $vals = [];
            for ($i = 0; $i < $req['n']; $i++) $vals[] = attempt($c, fn() => $c->get($req['key']));
            $out = ['ok' => $vals];
        }
    } catch (Throwable $e) {
        $out = ['error' => get_class($e) . ': ' . $e->getMessage()];
    }
    echo json_encode($out), "\n";
    fflush(STDOUT);
}
