/**
 * Run by scripts/test.sh before the suite: cleans up after test daemons
 * whose test process died without its cleanup (see TestDaemon.sweepAbandoned).
 */
import { TestDaemon } from './helpers/daemon.js';

const swept = await TestDaemon.sweepAbandoned();
if (swept.length) console.log(`swept ${swept.length} abandoned test daemon director${swept.length === 1 ? 'y' : 'ies'}: ${swept.join(' ')}`);
