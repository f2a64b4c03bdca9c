/**
 * The manifest source: Kubernetes Service, Endpoints and EndpointSlice objects from YAML or JSON
 * files, validated, loaded into the model and kept live.
 *
 * @example
 * ```ts
 * import { formatLoadErrors, readManifests } from "./src/sources/manifests/mod.ts";
 * const load = await readManifests("deploy/examples");
 * formatLoadErrors(load).forEach((line) => console.error(line));
 * ```
 * @module
 */

export {
  assembleManifests,
  formatLoadErrors,
  isJsonPath,
  keepLastGood,
  loadManifestTexts,
  type ManifestFile,
  type ManifestLoad,
  type ManifestObject,
  type ManifestState,
  type ManifestText,
  parseManifestFile,
  unreadableManifestFile,
} from "./load.ts";
export {
  listManifestFiles,
  type ManifestFileInfo,
  readManifestBytes,
  readManifestFile,
  readManifests,
} from "./read.ts";
export { ManifestSource, type ManifestSourceOptions, type ReloadResult } from "./source.ts";
