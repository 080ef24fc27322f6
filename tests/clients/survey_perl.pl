# survey_perl.pl - the Perl Redis (libredis-perl) and Redis::Fast
# (libredis-fast-perl) driver of survey.py; the protocol is described at the
# top of survey_redispy.py.
#
#   perl survey_perl.pl Redis|Redis::Fast CONFIG_JSON
#
# The database is chosen as these libraries' users do, with select() after
# new() (style "on_connect": in an on_connect callback, kept on reconnect);
# style "on_connect" with user: AUTH user password in on_connect (Redis::Fast
# has no username option).
use strict;
use warnings;
use JSON::PP;

my ($module, $json) = @ARGV;
eval "require $module; 1" or die "cannot load $module: $@";
my $cfg = decode_json($json);
$| = 1;

my %opts = (server => "$cfg->{host}:$cfg->{port}", read_timeout => 5);
$opts{name} = $cfg->{name} if exists $cfg->{name};
my $style = $cfg->{style} // "";
if ($style eq "on_connect") {
    my ($user, $password, $db) = @$cfg{qw(user password db)};
    $opts{on_connect} = sub {
        my ($r) = @_;
        $r->auth($user, $password) if defined $user;
        $r->select($db) if defined $db;
    };
    $opts{password} = $password if defined $password && !defined $user;
} else {
    $opts{username} = $cfg->{user} if exists $cfg->{user};
    $opts{password} = $cfg->{password} if exists $cfg->{password};
}
my $c = $module->new(%opts);
$c->select($cfg->{db}) if exists $cfg->{db} && $style ne "on_connect";

sub attempt {
    my ($fn) = @_;
    my @r = eval { $fn->() };
    if ($@) {
        my $e = "$@";
        $e =~ s/ at \S+ line \d+\.?\s*$//;
        return { err => $e };
    }
    return @r == 1 ? $r[0] : \@r;
}

sub workload {
    my ($p) = @_;
    return [
        attempt(sub { scalar $c->set($p . "s", "v1") }),
        attempt(sub { scalar $c->get($p . "s") }),
        attempt(sub { scalar $c->get($p . "missing") }),
        attempt(sub { scalar $c->hset($p . "h", "f1", "a", "f2", "b") }),
        attempt(sub { [ $c->hgetall($p . "h") ] }),
        attempt(sub { [ $c->mget($p . "s", $p . "missing", $p . "h") ] }),
        attempt(sub { scalar $c->client_getname() }),
        attempt(sub { scalar $c->set($p . "hot", "hotvalue") }),
        attempt(sub { scalar $c->get($p . "hot") }),
    ];
}

my $coder = JSON::PP->new->canonical;
while (my $line = <STDIN>) {
    my $req = decode_json($line);
    my $out = eval {
        if ($req->{op} eq "workload") {
            +{ ok => workload($req->{p}) };
        } else {
            my $key = $req->{key};
            +{ ok => [ map { attempt(sub { scalar $c->get($key) }) } 1 .. $req->{n} ] };
        }
    };
    $out = { error => "$@" } unless defined $out;
    print $coder->encode($out), "\n";
}
