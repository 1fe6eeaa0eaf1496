import { runPlacementBuild } from '../pipeline/placement-build';

/** `npm run migrate-tenant -- <command>`: the placement pipeline's CodeBuild steps (see `pipeline/placement-build.ts`). */
runPlacementBuild(process.argv.slice(2), process.env, console.log).catch((error: Error) => {
  console.error(error.message);
  process.exit(1);
});
