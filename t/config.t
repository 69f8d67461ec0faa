# A bad directive value is refused by configtest with a message that
# names the directive and the accepted values.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use SDemo::Test;
use SDemo::Httpd;

my $h = SDemo::Httpd->new(name => 'config', mpm => 'event');
my ($rc, $out) = $h->configtest;
is($rc, 0, 'the base configuration passes configtest') or diag($out);
like($out, qr/Syntax OK/, 'Syntax OK');

for my $t (['SessionDemoWhenFull sometimes', qr/SessionDemoWhenFull/, qr/evict/, qr/refuse/],
           ['SessionDemoStore floppy', qr/SessionDemoStore/, qr/shm/],
           ['SessionDemoCapacity 0', qr/SessionDemoCapacity/],
           ['SessionDemoCapacity 99999999', qr/SessionDemoCapacity/],
           ['SessionDemoCapacity many', qr/SessionDemoCapacity/],
           ['SessionDemoMemory 12Q', qr/SessionDemoMemory/],
           ['SessionDemoMaxDataSize -1', qr/SessionDemoMaxDataSize/],
           ['SessionDemoIdleTimeout -5', qr/SessionDemoIdleTimeout/],
           ['SessionDemoIdleTimeout soon', qr/SessionDemoIdleTimeout/],
           ['SessionDemoMaxAge 0x', qr/SessionDemoMaxAge/],
           ['SessionDemoCookieSameSite Loose', qr/SessionDemoCookieSameSite/, qr/Strict/, qr/Lax/, qr/None/],
           ['SessionDemoCookieSecure Maybe', qr/SessionDemoCookieSecure/, qr/Auto/],
           ['SessionDemoCookieName "bad name"', qr/SessionDemoCookieName/],
           ['SessionDemoCookieName a;b', qr/SessionDemoCookieName/],
           ['SessionDemoLoginThrottle 5', qr/SessionDemoLoginThrottle/],
           ['SessionDemoLoginThrottle five 900', qr/SessionDemoLoginThrottle/],
           ['SessionDemoBindUserAgent Yes', qr/SessionDemoBindUserAgent/],
           ['SessionDemoEnv 1x', qr/SessionDemoEnv/],
           ['SessionDemoLoginURL login', qr/SessionDemoLoginURL/],
           ["<Location /x>\nSessionDemoCapacity 10\n</Location>", qr/SessionDemoCapacity/],
           ['SessionDemoMaxSessionsPerUser -1', qr/SessionDemoMaxSessionsPerUser/],
           ['SessionDemoMaxSessionsPerUser lots', qr/SessionDemoMaxSessionsPerUser/],
           # Geometry the store cannot honour: refused at configtest, not at
           # start (a huge memory for few sessions once wrapped a 32-bit
           # chunk count and wrote past the segment).
           ["SessionDemoCapacity 1000\nSessionDemoMemory 268435440K", qr/SessionDemo(?:Capacity|Memory)/],
           ["SessionDemoMaxDataSize 1M\nSessionDemoMemory 64K", qr/SessionDemoMaxDataSize/]) {
    my ($line, @want) = @$t;
    (my $name = $line) =~ s/\n/ /g;
    $h->{config} = "$line\n";
    my ($rc, $out) = $h->configtest;
    isnt($rc, 0, "configtest refuses: $name");
    like($out, $_, "... and says $_") for @want;
}

done_testing;
