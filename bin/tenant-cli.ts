import { runTenantCli } from '../local/tenant-cli';

/** `npm run tenant -- <command>`: see `local/tenant-cli.ts`. */
runTenantCli(process.argv.slice(2), process.env, console.log, console.error).catch((error: Error) => {
  console.error(error.message);
  process.exit(1);
});
