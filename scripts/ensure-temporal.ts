import { loadConfig } from '../lib/config.js';
import { findOrBuildTemporal } from '../temporal/binary.js';

/** Prints the path of the Temporal CLI, building it first when none is found. */
const config = loadConfig();
console.log(findOrBuildTemporal({ cli: config.temporal.cli }));
